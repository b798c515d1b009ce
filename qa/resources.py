"""Where the shipped data lives: rubrics (+ lexicon), the default model, column profiles.

An installed wheel carries them as package data under ``qa/data/`` (``setup.py`` copies ``rubrics/`` and
``models/default/`` there at build time), read through ``importlib.resources``; a source checkout (editable
install) reads them in place, so the repository keeps one copy.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def data_root() -> Path:
    """``qa/data`` of an installed package, else the checkout's root."""
    packaged = resources.files("qa") / "data"
    if packaged.is_dir():
        return Path(str(packaged))
    return CHECKOUT


def rubric_dir() -> Path:
    return data_root() / "rubrics"


def default_rubric() -> Path:
    return rubric_dir() / "default.yaml"


def default_model_dir() -> Path:
    return data_root() / "models" / "default"


def column_profiles_dir() -> Path:
    return Path(str(resources.files("qa.io") / "profiles"))
