"""qa.cli: commands load lazily — ``import qa.cli``, ``qa --help`` and every ``qa CMD --help`` import neither
torch, transformers nor spaCy; the listing's help is each command's own docstring."""

from __future__ import annotations

import subprocess
import sys

from qa.cli import COMMANDS, command_help, load_command

HEAVY = ("torch", "transformers", "spacy", "duckdb")


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_cli_import_and_help_load_no_heavy_library():
    code = ("import sys, qa.cli\n"
            "from qa.cli import app\n"
            "try:\n    app(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert _run(code).strip().splitlines()[-1] == "[]"


def test_cli_every_command_help_loads_no_heavy_library():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom qa.cli import app, COMMANDS\n"
            "for c in COMMANDS:\n"
            "    r = CliRunner().invoke(app, [c, '--help'])\n"
            "    assert r.exit_code == 0, (c, r.output)\n"
            "    assert 'Usage' in r.output, c\n"
            f"print(sorted(m for m in {HEAVY[:3]!r} if m in sys.modules))")
    assert _run(code).strip().splitlines()[-1] == "[]"


def test_cli_listing_help_is_the_commands_docstring():
    import inspect
    for name in COMMANDS:
        cmd = load_command(name)
        assert cmd.name == name
        mod, attr = COMMANDS[name]
        obj = getattr(sys.modules[mod], attr)
        want = obj.info.help if hasattr(obj, "info") else inspect.getdoc(obj)
        assert command_help(name) == want, name
