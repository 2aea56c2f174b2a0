"""Checks of the Chinese edition's catalogues (locales/zh_CN/LC_MESSAGES/**/*.po), shared by
tests/test_translation.py and the translators' own tools.

A translated message must keep everything of its English message that is not prose: the
targets of its roles ({term}, {ref}, {doc}, {cite:p}, {eq}, ...), its math, its inline code and
its link targets; and it must call each glossary term by the Chinese name the glossary gives it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locales" / "zh_CN" / "LC_MESSAGES"

ROLE = re.compile(r"\{([a-z:]+)\}`([^`]*)`")
MATH = re.compile(r"\$\$.+?\$\$|\$[^$]+\$", re.S)
CODE = re.compile(r"``[^`]+``|`[^`]+`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
CJK = re.compile(r"[\u4e00-\u9fff]")


def catalogues() -> dict[str, Catalog]:
    """Every catalogue by page name (``book/06_applications``)."""
    found = {}
    for path in sorted(LOCALE.rglob("*.po")):
        with path.open("rb") as f:
            found[path.relative_to(LOCALE).with_suffix("").as_posix()] = read_po(f)
    return found


def is_docstring(message: Message) -> bool:
    """A message of the API reference taken from the package's docstrings (they stay English,
    like the code they document: see the API reference page)."""
    # Babel reads the location "of selfattention.reference:1" as ("of", None) and
    # ("selfattention.reference", 1)
    return bool(message.locations) and all(
        path == "of" or path.startswith("selfattention") for path, _ in message.locations
    )


def role_targets(text: str) -> Counter[tuple[str, str]]:
    """The (role, target) pairs of `text`: ``{term}`title <target>``` and ``{term}`target```."""
    targets: Counter[tuple[str, str]] = Counter()
    for role, content in ROLE.findall(text):
        match = re.fullmatch(r"(.*?)\s*<([^<>]+)>", content, re.S)
        targets[(role, match.group(2) if match else content)] += 1
    return targets


def _without_roles(text: str) -> str:
    return ROLE.sub(" ", text)


def problems(english: str, chinese: str) -> list[str]:
    """What `chinese` lost or changed of `english`'s roles, math, inline code and links."""
    found = []
    if role_targets(english) != role_targets(chinese):
        found.append(f"roles differ: {role_targets(english)} vs {role_targets(chinese)}")
    plain_en, plain_zh = _without_roles(english), _without_roles(chinese)
    if Counter(MATH.findall(plain_en)) != Counter(MATH.findall(plain_zh)):
        found.append("math differs")
    code_en = Counter(CODE.findall(MATH.sub(" ", plain_en)))
    code_zh = Counter(CODE.findall(MATH.sub(" ", plain_zh)))
    if code_en != code_zh:
        found.append(
            f"inline code differs: {sorted(code_en - code_zh)} vs {sorted(code_zh - code_en)}"
        )
    if Counter(LINK.findall(english)) != Counter(LINK.findall(chinese)):
        found.append("link targets differ")
    return found


def glossary_names() -> dict[str, str]:
    """English term -> its Chinese name, from the glossary's catalogue: the translation of a
    term is written ``中文名 (english term)``."""
    names = {}
    for message in catalogues()["book/glossary"]:
        match = re.fullmatch(r"(.+?) \((.+)\)", message.string or "")
        if match and match.group(2) == message.id:
            names[message.id.lower()] = match.group(1)
    return names
