"""Paths shared by the browser tests: the built site, where screenshots go, axe-core."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def site_pages() -> list[str]:
    """Every HTML page of the built site (both editions), relative to its root (empty before a
    build)."""
    skip = ("_static/", "_sources/", "_images/", "_panels_static/")
    pages = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html"))
    return [p for p in pages if not p.removeprefix("zh/").startswith(skip)]
