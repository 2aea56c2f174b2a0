"""Internal links of the built site: linkchecker (offline, internal links only by default) must
find none broken, including links in raw HTML that Sphinx's `-n` does not see."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from sitecheck import SITE


def test_no_broken_internal_links():
    linkchecker = shutil.which("linkchecker", path=str(Path(sys.executable).parent))
    assert linkchecker, "linkchecker is not installed: pip install -r requirements-dev.txt"
    assert (SITE / "index.html").exists(), "no built site: run `make book` first"
    done = subprocess.run(
        [linkchecker, "--no-status", "--no-warnings", str(SITE / "index.html")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 errors found" in done.stdout, done.stdout[-2000:]
