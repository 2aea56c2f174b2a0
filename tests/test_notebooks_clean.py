"""Quiet diffs: the stored notebooks carry no volatile metadata.

A run rewrites each cell's execution timestamps (`metadata.execution`) and the notebook's Python
version; stored, they turn a one-line change into a diff of the whole notebook. nbstripout, with
outputs, execution counts and cell ids kept, removes them: `make execute` runs it after every
run, `make strip` on every notebook, and pre-commit before every commit. The arguments are those
of `.pre-commit-config.yaml`, and the Makefile uses the same.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
# Cell metadata that a run or an editor writes and that says nothing about the book.
VOLATILE_CELL_KEYS = {"execution", "ExecuteTime", "collapsed", "scrolled", "heading_collapsed"}


def nbstripout_hook() -> dict:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    return next(hook for hook in hooks if hook["id"] == "nbstripout")


def test_pre_commit_and_makefile_strip_alike():
    hook = nbstripout_hook()
    args = hook["args"]
    assert {"--keep-output", "--keep-count", "--keep-id"} <= set(args), args
    makefile = (ROOT / "Makefile").read_text()
    line = re.search(r"^NBSTRIPOUT := (.*)$", makefile, re.M)
    assert line and shlex.split(line[1]) == args, "Makefile's NBSTRIPOUT differs from pre-commit"
    assert re.fullmatch(hook["files"], "book/04_math.ipynb")


def test_pre_commit_config_is_valid():
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert pre_commit, "pre-commit is not installed: pip install -r requirements-dev.txt"
    done = subprocess.run(
        [pre_commit, "validate-config", str(ROOT / ".pre-commit-config.yaml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_volatile_metadata(path):
    notebook = json.loads(path.read_text())
    found = [
        f"cell {i}: metadata.{key}"
        for i, cell in enumerate(notebook["cells"])
        for key in VOLATILE_CELL_KEYS & set(cell.get("metadata", {}))
    ]
    if "version" in notebook["metadata"].get("language_info", {}):
        found.append("metadata.language_info.version")
    assert not found, f"{path.name}: run `make strip` ({', '.join(found[:5])} ...)"


def test_nbstripout_would_change_nothing():
    nbstripout = shutil.which("nbstripout", path=str(Path(sys.executable).parent))
    assert nbstripout, "nbstripout is not installed: pip install -r requirements-dev.txt"
    done = subprocess.run(
        [nbstripout, "--verify", *nbstripout_hook()["args"], *map(str, NOTEBOOKS)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"run `make strip`:\n{done.stdout}{done.stderr}"
