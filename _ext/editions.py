"""The two editions of the book, English at the site's root and Chinese under ``zh/``.

The Chinese edition is the same notebooks built with ``language = "zh_CN"``: Sphinx replaces
every paragraph, heading, list item, admonition title, caption and alt text by its translation
from ``locales/zh_CN/LC_MESSAGES/<page>.po`` (the standard gettext workflow; code cells and their
outputs are not messages, so they exist once). This extension adds what that workflow lacks:

* a link on every page to the same page in the other edition (``language-switch.html`` in the
  article's header, and ``<link rel="alternate" hreflang>`` for search engines);
* the article's quotations appear in the Chinese edition as the original only: the English
  rendering that follows each quotation (a paragraph that begins with *Translation:*) is left
  out of the Chinese pages and of the catalogues, so nobody translates it back into Chinese;
* two kinds of text that Sphinx's gettext workflow does not reach become messages: the titles
  of the exercises (sphinx-exercise builds them without a source, and Sphinx extracts only text
  that has one; the solutions copy the exercise's title before translation, so they are given
  the translated one), and the captions of the table of contents' parts (sphinx-external-toc
  inserts them after Sphinx has translated the page; they are looked up here in the root
  page's catalogue, where the gettext builder puts them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes, locale
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.util.i18n import docname_to_domain
from sphinx_exercise.nodes import exercise_enumerable_node, exercise_node, exercise_subtitle

EDITIONS = {"en": ("English", ""), "zh": ("中文", "zh/")}  # label, directory under the site root


def edition(language: str | None) -> str:
    """``"zh"`` for a Chinese build (``zh_CN``), ``"en"`` otherwise."""
    return "zh" if (language or "").startswith("zh") else "en"


def is_quote_translation(node: nodes.Node) -> bool:
    """A paragraph that begins with an emphasised "Translation:" (the English of a quotation)."""
    if not isinstance(node, nodes.paragraph) or not node.children:
        return False
    first = node.children[0]
    return isinstance(first, nodes.emphasis) and first.astext().strip() == "Translation:"


class DropQuoteTranslations(SphinxTransform):
    """Leave the English renderings of the article's quotations out of the Chinese edition.

    Runs before Sphinx's own ``Locale`` transform (priority 20), so the paragraphs are gone
    before messages are translated, and in the gettext builder, so they are not extracted.
    """

    default_priority = 10

    def apply(self, **kwargs: Any) -> None:
        chinese = edition(self.config.language) == "zh"
        if not (chinese or self.app.builder.name == "gettext"):
            return
        for node in list(self.document.findall(is_quote_translation)):
            node.parent.remove(node)


class ExerciseTitlesAreMessages(SphinxTransform):
    """Give each exercise's title (the directive's argument, plain text in this book) the source
    that makes Sphinx translate it (before ``Locale``, priority 20)."""

    default_priority = 11

    def apply(self, **kwargs: Any) -> None:
        for subtitle in self.document.findall(exercise_subtitle):
            if not subtitle.source:
                subtitle.source = self.document["source"]
                subtitle.line = subtitle.parent.parent.line or 1
                subtitle.rawsource = subtitle.astext()
                subtitle.parent.parent["title_message"] = subtitle.rawsource


def extract_exercise_titles(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """The gettext builder extracts messages after sphinx-exercise has folded each title into
    "Exercise (title)"; add the titles noted above to the page's catalogue."""
    if app.builder.name != "gettext":
        return
    catalogue = app.builder.catalogs[docname_to_domain(docname, app.config.gettext_compact)]
    for node in doctree.findall(lambda n: "title_message" in getattr(n, "attributes", {})):
        node.source = node.source or doctree["source"]
        node.uid = ""  # as Sphinx does for the messages of a toctree
        catalogue.add(node["title_message"], node)


class SolutionsShowTranslatedTitles(SphinxTransform):
    """sphinx-exercise's registry holds a copy of each exercise made before translation, from
    which a solution's title ("Solution to Exercise 3 (...)") is made: replace it by the
    translated exercise (after ``Locale``)."""

    default_priority = 25

    def apply(self, **kwargs: Any) -> None:
        registry = getattr(self.env, "sphinx_exercise_registry", {})
        for node in self.document.findall(
            lambda n: isinstance(n, (exercise_node, exercise_enumerable_node))
        ):
            if node.get("label") in registry:
                registry[node["label"]]["node"] = node.deepcopy()


class TranslateTocCaptions(SphinxTransform):
    """Translate the captions of the parts of the table of contents (after sphinx-external-toc
    has inserted them, priority 100) with the catalogue of the page that holds them."""

    default_priority = 150

    def apply(self, **kwargs: Any) -> None:
        if edition(self.config.language) != "zh":
            return
        toctrees = [t for t in self.document.findall(addnodes.toctree) if t.get("caption")]
        if not toctrees:
            return
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        directories = [str(Path(self.app.srcdir) / d) for d in self.config.locale_dirs]
        catalogue, found = locale.init(directories, self.config.language, domain)
        if not found:
            return
        for toctree in toctrees:
            toctree["caption"] = toctree["rawcaption"] = catalogue.gettext(toctree["caption"])


def other_edition_url(pagename: str, language: str | None) -> tuple[str, str, str]:
    """The relative URL of `pagename` in the other edition, its label and its language tag."""
    here = edition(language)
    there = "zh" if here == "en" else "en"
    to_root = "../" * pagename.count("/")  # from this page up to this edition's root
    if here == "zh":
        to_root += "../"  # the Chinese edition sits one directory below the site's root
    label, directory = EDITIONS[there]
    return f"{to_root}{directory}{pagename}.html", label, "zh-CN" if there == "zh" else "en"


def add_language_switch(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    url, label, tag = other_edition_url(pagename, app.config.language)
    context["language_switch"] = {"url": url, "label": label, "lang": tag}
    context["metatags"] = (
        context.get("metatags", "") + f'\n<link rel="alternate" hreflang="{tag}" href="{url}" />'
    )
    header = context.get("theme_article_header_end")
    if isinstance(header, list) and "language-switch.html" not in header:
        context["theme_article_header_end"] = ["language-switch.html", *header]


def add_templates(app: Sphinx, config: Any) -> None:
    config.templates_path = [*config.templates_path, str(Path(__file__).parent / "templates")]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", add_templates)
    app.add_transform(DropQuoteTranslations)
    app.add_transform(ExerciseTitlesAreMessages)
    app.add_transform(SolutionsShowTranslatedTitles)
    app.add_transform(TranslateTocCaptions)
    app.connect("doctree-resolved", extract_exercise_titles)
    # after the theme's handler (priority 500) has turned the header's templates into a list
    app.connect("html-page-context", add_language_switch, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
