"""Hostile command lines for the refit scripts: a bad ``--select`` is a usage error, not a traceback."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))


@pytest.mark.parametrize("spec, words", [
    ("{probes}", "expected PROBES:FLAG"),                          # the flag missing
    ("{probes}:", "expected PROBES:FLAG"),
    ("{probes}:vague_reply:third", "expected PROBES:FLAG"),        # a half that is neither odd nor even
    ("{probes}:vague_reply:odd:x", "expected PROBES:FLAG"),
    ("{missing}:vague_reply", "no such file"),
])
def test_refit_select_spec_is_a_usage_error(tmp_path, capsys, monkeypatch, spec, words):
    import refit_turnflags
    probes = tmp_path / "p.jsonl"
    probes.write_text("", encoding="utf-8")
    spec = spec.format(probes=probes, missing=tmp_path / "none.jsonl")
    monkeypatch.setattr(sys, "argv", ["refit_turnflags.py", str(tmp_path / "model"), "--flags", "vague_reply",
                                      "--vetoes", "--select", spec])
    with pytest.raises(SystemExit) as e:
        refit_turnflags.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert "--select" in err and words in err, err


def test_refit_select_spec_parses_the_half(tmp_path):
    from refit_turnflags import select_spec
    probes = tmp_path / "p.jsonl"
    probes.write_text("", encoding="utf-8")
    assert select_spec(f"{probes}:uncivil_language") == (str(probes), "uncivil_language")
    assert select_spec(f"{probes}:uncivil_language:even") == (str(probes), "uncivil_language", "even")
