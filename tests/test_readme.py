"""Every command the README gives resolves: each `make` target exists and `make -n` accepts it
with the README's arguments, each program is installed where the README says, and each file or
folder it names exists. (The commands themselves were run as written when they were added;
the long ones run in `make test` anyway.)"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    """Each command line of the README's ```bash blocks, comments removed, `&&` split."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands += [part.strip() for part in line.split("&&")]
    return commands


COMMANDS = readme_commands()


def _paths(words: list[str]) -> list[str]:
    """The words that name a file or folder of the repository."""
    values = [w.partition("=")[2] if re.match(r"[A-Z_]+=", w) else w for w in words]
    return [
        w
        for w in values
        if not w.startswith("-")
        and ("/" in w or re.search(r"\.(txt|ipynb|py|yml|in)$", w))
        and not w.startswith(".venv/")
    ]


def test_the_readme_gives_the_commands():
    heads = {shlex.split(c)[0] for c in COMMANDS}
    assert {"make", ".venv/bin/jupyter"} <= heads, COMMANDS
    targets = {shlex.split(c)[1] for c in COMMANDS if c.startswith("make ")}
    assert {"book", "test", "check", "matrix", "execute", "lock", "strip"} <= targets, targets


@pytest.mark.parametrize("command", COMMANDS)
def test_command_resolves(command):
    words = shlex.split(command)
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    program, args = words[0], words[1:]
    for path in _paths(args):
        assert (ROOT / path).exists(), f"{command}: {path} does not exist"
    if program == "make":
        done = subprocess.run(
            ["make", "-n", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        )
        assert done.returncode == 0, f"make -n {' '.join(args)}:\n{done.stderr}"
    elif program == "bash":
        assert (ROOT / args[0]).is_file(), command
    elif program.startswith("python3"):
        assert shutil.which(program), f"{program} is not on PATH"
        assert args[:2] == ["-m", "venv"], command
    elif program.startswith(".venv/bin/"):
        name = program.removeprefix(".venv/bin/")
        tool = VENV_BIN / name
        assert tool.exists(), f"{command}: {name} is not installed in the environment"
        if args[:1] == ["-r"]:
            assert (ROOT / args[1]).is_file(), command
        if name == "jupyter" and args[:1] == ["lab"]:
            done = subprocess.run(
                [str(tool), "lab", "--version"], capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"`jupyter lab` is not installed: {done.stderr}"
    else:
        pytest.fail(f"the README gives a command this test does not know: {command}")
