"""Structural checks of the book's notebooks (nbval checks their outputs; this checks the rules).

- stored outputs come from one fresh top-to-bottom run: execution counts are 1..N, no error outputs
  except in cells tagged `raises-exception`;
- at least 80% of the code cells that have output are compared by nbval (not ignored, not skipped);
- every chapter and every sub-page (`04a_...`, `05b_...`: sections of the chapter whose article
  section they extend) imports the package, has a title with the article's Chinese section
  title, and ends with exercises; every notebook is in the table of contents.
"""

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
CHAPTERS = sorted(BOOK.glob("0[1-9]_*.ipynb"))
PAGES = sorted(BOOK.glob("*.ipynb"))  # the chapters and their sub-pages
IGNORE_TAGS = {"nbval-ignore-output", "nbval-skip"}
IGNORE_COMMENTS = ("# NBVAL_IGNORE_OUTPUT", "# NBVAL_SKIP")


def code_cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return nb, [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_nine_chapters():
    assert [p.name[:2] for p in CHAPTERS] == [f"0{i}" for i in range(1, 10)]


def test_every_notebook_is_a_chapter_or_a_sub_page_in_the_table_of_contents():
    import yaml

    toc = yaml.safe_load((BOOK.parent / "_toc.yml").read_text())
    files = set()

    def collect(entries):
        for entry in entries:
            if "file" in entry:
                files.add(entry["file"])
            collect(entry.get("sections", []) + entry.get("chapters", []))

    collect(toc["parts"])
    for page in PAGES:
        assert f"book/{page.stem}" in files, f"{page.name} is not in _toc.yml"
        assert page in CHAPTERS or page.name[:2] in {c.name[:2] for c in CHAPTERS}


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_fresh_run_without_errors(path):
    _, cells = code_cells(path)
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "raises-exception" not in tags:
            assert not any(o["output_type"] == "error" for o in cell["outputs"]), cell["source"]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_most_outputs_are_compared(path):
    _, cells = code_cells(path)
    with_output = [c for c in cells if c["outputs"]]
    ignored = [
        c
        for c in with_output
        if IGNORE_TAGS & set(c.get("metadata", {}).get("tags", []))
        or "".join(c["source"]).lstrip().startswith(IGNORE_COMMENTS)
    ]
    assert with_output, "a chapter with no output to compare"
    compared = 1 - len(ignored) / len(with_output)
    assert compared >= 0.8, f"only {compared:.0%} of the cells with output are compared"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_chapter_shape(path):
    nb, cells = code_cells(path)
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    title = re.search(r"^# (.+)$", markdown, flags=re.MULTILINE)
    assert title and re.search(r"[\u4e00-\u9fff]", title.group(1)), "title needs the Chinese title"
    assert any("import selfattention" in "".join(c["source"]) for c in cells)
    assert re.search(r"^#+ .*Exercises", markdown, flags=re.MULTILINE | re.IGNORECASE)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_first_code_cell_installs_the_package_where_missing(path):
    """Colab has no `selfattention`: the first code cell installs it from the repository that
    `_config.yml` names (the launch buttons' address), and does nothing where it is installed."""
    import yaml

    url = yaml.safe_load((BOOK.parent / "_config.yml").read_text())["repository"]["url"]
    _, cells = code_cells(path)
    first = cells[0]
    source = "".join(first["source"])
    assert 'if importlib.util.find_spec("selfattention") is None:' in source
    assert f'%pip install --quiet "selfattention[keras] @ git+{url}@main"' in source
    assert "hide-cell" in first["metadata"].get("tags", [])
    assert not first["outputs"], "installed locally: the stored run must not have installed it"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_every_figure_has_a_description(path):
    """myst-nb takes an output image's alt text from the cell's `mystnb.image.alt` metadata;
    without it the page's alt text is the image's file name."""
    _, cells = code_cells(path)
    for cell in cells:
        if any("image/png" in o.get("data", {}) for o in cell["outputs"]):
            alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt.split()) >= 15, f"no real description for {cell['source'][:80]}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_tensorflow_start_up_logs_are_not_shown(path):
    """TensorFlow's C++ start-up lines (absl, CUDA drivers) go to stderr when a notebook is run
    by hand; the site must not show them: such cells are tagged `remove-stderr`."""
    _, cells = code_cells(path)
    for cell in cells:
        logs = [
            o
            for o in cell["outputs"]
            if o.get("name") == "stderr"
            and re.search(r"absl|cudart|cuda drivers", "".join(o["text"]))
        ]
        if logs:
            assert "remove-stderr" in cell["metadata"].get("tags", []), cell["source"][:80]
