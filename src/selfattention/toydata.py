"""Toy data sets for the applications chapter, generated in code (NumPy only, seeded).

Nothing is downloaded: each function builds its data from a seed, so every run sees the same data.

* :func:`date_pairs` -- dates in many human formats and their ISO form (translation).
* :class:`CharVocab` -- characters <-> integer ids, with padding, start and end tokens.
* :func:`retrieval_task` -- a question at position 0, then facts scattered over the rest (QA).
* :func:`topic_documents` -- documents where a few sentences carry the topic (summarization).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["DATE_FORMATS", "CharVocab", "date_pairs", "retrieval_task", "topic_documents"]

MONTHS = [datetime.date(2000, m, 1).strftime("%B") for m in range(1, 13)]  # January ...
ORDINAL = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}

# Each format turns a date into a human-written string; none is ambiguous (no 03/04 day-month swap).
DATE_FORMATS = {
    "3 March 2021": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "March 3, 2021": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "Mar 3 2021": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    "03 MAR 2021": lambda d: f"{d.day:02d} {MONTHS[d.month - 1][:3].upper()} {d.year}",
    "3rd of March 2021": lambda d: (
        f"{d.day}{ORDINAL.get(d.day, 'th')} of {MONTHS[d.month - 1]} {d.year}"
    ),
    "Wednesday, 3 March 2021": lambda d: f"{d:%A}, {d.day} {MONTHS[d.month - 1]} {d.year}",
    "2021/03/03": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    "3.3.2021": lambda d: f"{d.day}.{d.month}.{d.year}",
}


def date_pairs(
    n: int, seed: int = 0, first_year: int = 1950, last_year: int = 2049
) -> tuple[list[str], list[str]]:
    """`n` random dates as (human strings, ISO strings), each in a randomly chosen format."""
    rng = np.random.default_rng(seed)
    start = datetime.date(first_year, 1, 1).toordinal()
    stop = datetime.date(last_year, 12, 31).toordinal()
    days = rng.integers(start, stop + 1, size=n)
    styles = rng.integers(0, len(DATE_FORMATS), size=n)
    formats = list(DATE_FORMATS.values())
    dates = [datetime.date.fromordinal(int(day)) for day in days]
    sources = [formats[s](d) for s, d in zip(styles, dates, strict=True)]
    return sources, [d.isoformat() for d in dates]


class CharVocab:
    """Characters <-> ids. Id 0 pads, 1 starts and 2 ends a target; characters follow."""

    PAD, START, END = 0, 1, 2

    def __init__(self, texts: Iterable[str]) -> None:
        self.chars = sorted(set("".join(texts)))
        self.index = {c: i + 3 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 3

    def encode(
        self, texts: Sequence[str], length: int, start: bool = False, end: bool = False
    ) -> np.ndarray:
        """`(len(texts), length)` int32 ids, padded with 0; raises if a text does not fit."""
        out = np.zeros((len(texts), length), np.int32)
        for row, text in enumerate(texts):
            ids = [self.START] * start + [self.index[c] for c in text] + [self.END] * end
            if len(ids) > length:
                raise ValueError(f"`length` must be >= {len(ids)} for {text!r}. Received: {length}")
            out[row, : len(ids)] = ids
        return out

    def decode(self, ids: ArrayLike) -> str:
        """Ids back to text, stopping at the first end or padding token."""
        chars = []
        for i in np.asarray(ids).tolist():
            if i in (self.PAD, self.END):
                break
            if i != self.START:
                chars.append(self.chars[i - 3])
        return "".join(chars)


def retrieval_task(
    n: int, length: int = 64, n_facts: int = 4, n_keys: int = 16, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A question first, then facts (key, value) scattered over the rest of the sequence.

    The question (a key, with value 0) sits at position 0; `n_facts` facts with distinct keys
    in 1..`n_keys` and values in 0..9 sit at distinct positions among the `length - 1` that
    follow, the other positions are empty. The answer is the value of the fact whose key was
    asked, to be given after reading the whole sequence. Returns `keys`, `values`
    `(n, length)` int32 (0 = empty; a value `v` is stored as `v + 1`), `answers` `(n,)` in
    0..9 and `distance` `(n,)`, the number of positions from the answering fact to the last
    position of the sequence (0 .. `length - 2`).
    """
    rng = np.random.default_rng(seed)
    keys = np.zeros((n, length), np.int32)
    values = np.zeros((n, length), np.int32)
    answers = np.zeros(n, np.int32)
    distance = np.zeros(n, np.int32)
    for row in range(n):
        positions = 1 + rng.choice(length - 1, size=n_facts, replace=False)
        fact_keys = rng.choice(np.arange(1, n_keys + 1), size=n_facts, replace=False)
        fact_values = rng.integers(0, 10, size=n_facts)
        keys[row, positions] = fact_keys
        values[row, positions] = fact_values + 1  # value ids 1..10; 0 = no value
        asked = rng.integers(n_facts)
        keys[row, 0] = fact_keys[asked]
        answers[row] = fact_values[asked]
        distance[row] = length - 1 - positions[asked]
    return keys, values, answers, distance


def topic_documents(
    n: int, n_sentences: int = 8, n_topic_sentences: int = 2, words: int = 6, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Documents of sentences; a few sentences carry the document's topic, the rest are filler.

    The vocabulary has 4 topics of 10 words each (ids 1..40) and 60 filler words (ids 41..100).
    Returns `docs` `(n, n_sentences, words)` int32, `topics` `(n,)` in 0..3 and `is_topic`
    `(n, n_sentences)` bool: which sentences a perfect extractive summary would pick.
    """
    rng = np.random.default_rng(seed)
    docs = rng.integers(41, 101, size=(n, n_sentences, words)).astype(np.int32)
    topics = rng.integers(0, 4, size=n).astype(np.int32)
    is_topic = np.zeros((n, n_sentences), bool)
    for row in range(n):
        chosen = rng.choice(n_sentences, size=n_topic_sentences, replace=False)
        is_topic[row, chosen] = True
        for s in chosen:  # half of a topic sentence's words come from its topic's 10 words
            slots = rng.choice(words, size=words // 2, replace=False)
            docs[row, s, slots] = 1 + 10 * topics[row] + rng.integers(0, 10, size=slots.size)
    return docs, topics, is_topic
