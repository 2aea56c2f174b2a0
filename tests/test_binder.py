"""The files repo2docker (Binder) reads must agree with `requirements.txt`: one list of versions.

repo2docker looks in `binder/` or `.binder/` if either exists, else at the top level; it takes
the Python version from `runtime.txt` and installs `requirements.txt` with pip, staging the whole
repository first when that file refers to a local path (`-e .`). A conda `environment.yml`, a
`Pipfile` or a `setup.py` would change what it installs, so none may exist.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_binder_reads_the_top_level_files():
    for folder in ("binder", ".binder"):
        assert not (ROOT / folder).exists(), f"{folder}/ would hide the top-level requirements.txt"
    for other in ("environment.yml", "Pipfile", "Pipfile.lock", "setup.py", "install.R"):
        assert not (ROOT / other).exists(), f"{other} would change what repo2docker installs"


def test_runtime_matches_the_python_of_the_project():
    runtime = (ROOT / "runtime.txt").read_text().strip()
    assert runtime == "python-3.11", runtime
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert re.search(r"^PYTHON \?= python3\.11$", (ROOT / "Makefile").read_text(), re.M)


def test_requirements_pin_everything_and_install_the_package():
    """requirements.txt is the complete lock (tests/test_lock.py); repo2docker honours a local
    reference (`-e .`) on any line: it then copies the repository before running pip."""
    lines = requirement_lines(ROOT / "requirements.txt")
    assert lines.count("-e .") == 1, "the package must be installed from the repository"
    for line in lines:
        if line != "-e .":
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.+\-!]*", line), line


def test_binder_installs_no_test_tools():
    """The test tools live in requirements-dev.txt; Binder (requirements.txt) gets none."""
    book = {line.split("==")[0].lower() for line in requirement_lines(ROOT / "requirements.txt")}
    for tool in ("pytest", "hypothesis", "ruff", "nbval", "playwright", "linkchecker", "uv"):
        assert tool not in book, f"{tool} is a test tool: requirements-dev.in, not requirements.in"
    assert "jupyterlab" in book, "`jupyter lab book/` (README) needs JupyterLab"


def test_launch_buttons_point_at_the_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = config["repository"]["url"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    assert config["repository"]["branch"] == "main"
    launch = config["launch_buttons"]
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert launch["thebe"] is True
