"""Build hook: ship the rubrics (with their lexicon) and the default model as package data.

The repository keeps one copy of each, in ``rubrics/`` and ``models/default/``; a wheel gets them under
``qa/data/`` (read through ``importlib.resources`` by ``qa.resources``). Editable installs read them in place.
Everything else is in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PACKAGE_DATA = {"rubrics": ROOT / "rubrics", "models/default": ROOT / "models" / "default"}


class BuildWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "qa" / "data"
        for rel, src in PACKAGE_DATA.items():
            if not src.is_dir():
                raise SystemExit(f"package data missing: {src}")
            shutil.copytree(src, target / rel, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "checkpoint*"))


setup(cmdclass={"build_py": BuildWithData})
