"""The Chinese edition's catalogues: complete, in step with the English text, faithful to what
is not prose (roles, math, code, links), consistent in its terms; and the machinery that builds
the edition (_ext/editions.py, _ext/zh_config.py).

"In step" is checked against a fresh extraction: the English pages are built with Sphinx's
gettext builder into a temporary directory, and every message found there must have a
translation that is neither empty nor fuzzy. A sentence changed in a notebook therefore fails
here until `make translations` has updated the catalogue and the sentence has been translated.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import i18n
import pytest
import yaml
from babel.messages.pofile import read_po

ROOT = i18n.ROOT
sys.path.insert(0, str(ROOT / "_ext"))
import editions  # noqa: E402
import zh_config  # noqa: E402

CATALOGUES = i18n.catalogues()
PAGES = sorted(CATALOGUES)


def translatable(catalogue):
    return [m for m in catalogue if m.id and not i18n.is_docstring(m)]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict[str, set[str]]:
    """The messages of the English pages as they are now, by page."""
    out = tmp_path_factory.mktemp("gettext")
    done = subprocess.run(
        [Path(sys.executable).parent / "jupyter-book", "build", str(ROOT), "--builder", "custom"]
        + ["--custom-builder", "gettext", "--path-output", str(out), "-q"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = {}
    for pot in (out / "_build" / "gettext").rglob("*.pot"):
        with pot.open("rb") as f:
            catalogue = read_po(f)
        page = pot.relative_to(out / "_build" / "gettext").with_suffix("").as_posix()
        found[page] = {m.id for m in translatable(catalogue)}
    return {page: ids for page, ids in found.items() if ids}


def test_every_page_has_a_catalogue(extracted):
    assert set(extracted) == set(PAGES), "run `make translations`"


@pytest.mark.parametrize("page", PAGES)
def test_every_message_of_the_english_page_is_translated(page, extracted):
    catalogue = CATALOGUES[page]
    missing = [
        i for i in sorted(extracted.get(page, ())) if not (m := catalogue.get(i)) or not m.string
    ]
    fuzzy = [m.id for m in translatable(catalogue) if m.fuzzy and m.id in extracted.get(page, ())]
    assert not missing, (
        f"{len(missing)} untranslated in {page} (make translations), e.g. {missing[:3]}"
    )
    assert not fuzzy, f"{len(fuzzy)} fuzzy in {page}, e.g. {fuzzy[:3]}"


@pytest.mark.parametrize("page", PAGES)
def test_translations_keep_roles_math_code_and_links(page):
    found = {
        m.id[:60]: p
        for m in translatable(CATALOGUES[page])
        if m.string and (p := i18n.problems(m.id, m.string))
    }
    assert not found


def test_glossary_is_chinese_to_english():
    glossary = CATALOGUES["book/glossary"]
    terms = [m for m in translatable(glossary) if m.id and re.fullmatch(r"[\w -]+", m.id)]
    assert len(terms) >= 30
    for message in terms:
        assert re.fullmatch(rf"\S.* \({re.escape(message.id)}\)", message.string), message.string


@pytest.mark.parametrize("page", PAGES)
def test_glossary_terms_keep_their_chinese_name(page):
    """Where the English links a glossary term, the Chinese uses the glossary's Chinese name."""
    names = i18n.glossary_names()
    wrong = []
    for message in translatable(CATALOGUES[page]):
        for (role, target), _ in i18n.role_targets(message.id).items():
            name = names.get(target.lower())
            if role == "term" and message.string and name not in message.string:
                wrong.append(f"{target} -> {name}: {message.string[:60]}")
    assert not wrong


def test_quotations_stay_in_the_original():
    """A message that is the article's Chinese is its own translation."""
    for page in PAGES:
        for message in translatable(CATALOGUES[page]):
            cjk = len(i18n.CJK.findall(message.id))
            latin = len(re.findall(r"[A-Za-z]", message.id))
            title = re.fullmatch(r"[A-Z][\w ,'-]* \(.+\)", message.id)  # "Math (数学…)"
            if cjk and cjk / (cjk + latin) >= 0.7 and not title:
                assert message.string in ("", message.id), (page, message.id[:40])


def test_quote_translations_are_recognised():
    from docutils import nodes

    para = nodes.paragraph("", "", nodes.emphasis("", "Translation:"), nodes.Text(' "x"'))
    assert editions.is_quote_translation(para)
    assert not editions.is_quote_translation(nodes.paragraph("", "Translation: x"))


@pytest.mark.parametrize(
    ("pagename", "language", "url"),
    [
        ("book/06_applications", "en", "../zh/book/06_applications.html"),
        ("book/06_applications", "zh_CN", "../../book/06_applications.html"),
        ("genindex", "en", "zh/genindex.html"),
        ("genindex", "zh_CN", "../genindex.html"),
        ("index", None, "zh/index.html"),
    ],
)
def test_language_switch_leads_to_the_same_page(pagename, language, url):
    assert editions.other_edition_url(pagename, language)[0] == url


def test_chinese_configuration_differs_only_in_language_title_address_and_labels():
    english = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    chinese = zh_config.chinese(english, ROOT)
    assert chinese["sphinx"]["config"].pop("language") == "zh_CN"
    for toggle in ("nb_code_prompt_show", "nb_code_prompt_hide"):
        assert i18n.CJK.search(chinese["sphinx"]["config"].pop(toggle))
    assert chinese.pop("title") != english.pop("title")
    assert chinese["html"].pop("baseurl") == english["html"].pop("baseurl") + "zh/"
    for name, path in chinese["sphinx"].pop("local_extensions").items():
        assert Path(path) == (ROOT / english["sphinx"]["local_extensions"][name]).resolve()
    english["sphinx"].pop("local_extensions")
    assert chinese == english
