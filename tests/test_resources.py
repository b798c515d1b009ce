"""qa.resources: the wheel carries rubrics, lexicon and the default model as package data, and an installed
package reads them from there (not from a checkout)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from qa.resources import data_root, default_model_dir, default_rubric
from tests.conftest import ROOT


def test_resources_in_a_checkout_are_the_repository_files():
    assert data_root() == ROOT
    assert default_rubric() == ROOT / "rubrics" / "default.yaml" and (default_model_dir() / "config.json").is_file()


@pytest.mark.slow
def test_resources_wheel_carries_and_reads_its_data(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot build a wheel here: {r.stderr[-300:]}")
    wheel = next((tmp_path / "dist").glob("qa-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("qa/data/rubrics/default.yaml", "qa/data/rubrics/stc3.yaml", "qa/data/rubrics/lexicon/zh.yaml",
              "qa/data/models/default/config.json", "qa/data/models/default/model.safetensors",
              "qa/io/profiles/qianniu.yaml"):
        assert f in names, f
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = ("import qa.resources as r, qa.rubric as rb; from qa.grader import check_model_dir; "
            "rub = rb.load_rubric(); check_model_dir(None, rub); print(r.data_root(), rub.name)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(tmp_path / "site" / "qa" / "data"), "default"]
