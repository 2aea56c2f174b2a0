"""The two editions of the book, English at the site's root and Chinese under ``zh/``.

The Chinese edition is the same notebooks built with ``language = "zh_CN"``: Sphinx replaces
every paragraph, heading, list item, admonition title, caption and alt text by its translation
from ``locales/zh_CN/LC_MESSAGES/<page>.po`` (the standard gettext workflow; code cells and their
outputs are not messages, so they exist once). This extension adds what that workflow lacks:

* a link on every page to the same page in the other edition (``language-switch.html`` in the
  article's header, and ``<link rel="alternate" hreflang>`` for search engines);
* the article's quotations appear in the Chinese edition as the original only: the English
  rendering that follows each quotation (a paragraph that begins with *Translation:*) is left
  out of the Chinese pages and of the catalogues, so nobody translates it back into Chinese.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform

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
    # after the theme's handler (priority 500) has turned the header's templates into a list
    app.connect("html-page-context", add_language_switch, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
