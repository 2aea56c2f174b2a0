"""Data for the small language models of chapter 5's sub-pages, generated in code (NumPy only).

Nothing is downloaded and nothing here needs TensorFlow: the models and their training loops are
written out in the notebooks, where they are explained; this module holds only the data they learn
from and the checks that judge what they generate.

* :func:`sentences` -- sentences of a small English grammar whose verbs agree with their subjects.
* :func:`entropy_per_sentence` -- the entropy of that grammar: the floor of a model's loss.
* :func:`is_grammatical` -- whether a sentence belongs to that grammar (agreement included).
* :class:`Chars` -- characters <-> integer ids for a character-level language model.
* :func:`repeated_tokens` -- random token segments, each repeated (the induction-head task).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ADJECTIVES",
    "NOUNS",
    "PLACES",
    "VERBS",
    "Chars",
    "entropy_per_sentence",
    "is_grammatical",
    "repeated_tokens",
    "sentences",
    "words",
]

NOUNS = ["cat", "dog", "bird", "fox", "girl", "boy", "horse", "farmer", "teacher", "robot"]
VERBS = ["see", "chase", "like", "follow", "help", "watch", "find", "call"]
ADJECTIVES = ["small", "old", "happy", "quiet", "red", "clever", "tired"]
PLACES = ["river", "house", "garden", "school", "road"]
PREPOSITIONS = ["near", "behind", "in"]
P_PLURAL, P_ADJECTIVE, P_PLACE = 0.5, 0.5, 0.4  # how often a noun phrase is plural, has an
# adjective, and how often a sentence ends with a place


def _plural(word: str) -> str:
    return word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")


def _noun_phrase(rng: np.random.Generator) -> tuple[str, bool]:
    """A subject or object: `(text, is_plural)`. 'a' only before a singular noun, 'two' only
    before a plural one, 'the' before either."""
    plural = bool(rng.random() < P_PLURAL)
    det = rng.choice(["the", "two"] if plural else ["the", "a"])
    noun = rng.choice(NOUNS)
    parts = [str(det)]
    if rng.random() < P_ADJECTIVE:
        parts.append(str(rng.choice(ADJECTIVES)))
    parts.append(_plural(noun) if plural else str(noun))
    return " ".join(parts), plural


def sentences(n: int, seed: int = 0) -> list[str]:
    """`n` random sentences such as 'two old foxes watch a robot near the river.'

    The verb agrees with the subject ('the cat sees', 'the cats see'); an adjective between the
    determiner and the noun, and the optional place at the end, vary the length. Seeded: the same
    `seed` gives the same sentences.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"`n` must be a non-negative integer. Received: n={n!r}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        subject, plural = _noun_phrase(rng)
        verb = str(rng.choice(VERBS))
        verb = verb if plural else _plural(verb)
        obj, _ = _noun_phrase(rng)
        sentence = f"{subject} {verb} {obj}"
        if rng.random() < P_PLACE:
            sentence += f" {rng.choice(PREPOSITIONS)} the {rng.choice(PLACES)}"
        out.append(sentence + ".")
    return out


def _binary_entropy(p: float) -> float:
    return float(-p * np.log(p) - (1 - p) * np.log(1 - p))


def entropy_per_sentence() -> float:
    """The entropy of one sentence of :func:`sentences`, in nats.

    Each sentence is a sequence of independent choices (number, determiner, adjective or not,
    which adjective, noun, verb, ..., place or not), and the text determines every choice, so
    the entropy of the text is the sum of the choices' entropies. Divided by the characters per
    sentence it is the lowest cross-entropy per character any model can reach on this text.
    """
    noun_phrase = (
        _binary_entropy(P_PLURAL)
        + np.log(2)  # 'the' or 'a' (singular), 'the' or 'two' (plural), equally likely
        + _binary_entropy(P_ADJECTIVE)
        + P_ADJECTIVE * np.log(len(ADJECTIVES))
        + np.log(len(NOUNS))
    )
    place = _binary_entropy(P_PLACE) + P_PLACE * np.log(len(PREPOSITIONS) * len(PLACES))
    return float(2 * noun_phrase + np.log(len(VERBS)) + place)


def words() -> set[str]:
    """Every word the grammar can produce (plural forms included)."""
    nouns = set(NOUNS) | {_plural(w) for w in NOUNS}
    verbs = set(VERBS) | {_plural(w) for w in VERBS}
    return {"the", "a", "two"} | nouns | verbs | set(ADJECTIVES) | set(PLACES) | set(PREPOSITIONS)


def _alternatives(items: Iterable[str]) -> str:
    return "|".join(sorted(items, key=len, reverse=True))


_ADJ = rf"(?:(?:{_alternatives(ADJECTIVES)}) )?"
_SINGULAR = rf"(?:the|a) {_ADJ}(?:{_alternatives(NOUNS)})"
_PLURAL = rf"(?:the|two) {_ADJ}(?:{_alternatives(_plural(w) for w in NOUNS)})"
_OBJECT = f"(?:{_SINGULAR}|{_PLURAL})"
_PLACE = rf"(?: (?:{_alternatives(PREPOSITIONS)}) the (?:{_alternatives(PLACES)}))?"
_SENTENCE = re.compile(
    rf"(?:{_SINGULAR} (?:{_alternatives(_plural(v) for v in VERBS)})"
    rf"|{_PLURAL} (?:{_alternatives(VERBS)})) {_OBJECT}{_PLACE}\."
)


def is_grammatical(sentence: str) -> bool:
    """True if `sentence` (with its final full stop) is one the grammar of :func:`sentences`
    can produce: right word order, 'a'/'two' with the right number, verb agreeing with subject."""
    return _SENTENCE.fullmatch(sentence) is not None


class Chars:
    """Characters <-> ids for a character-level language model (no special tokens).

    Args:
        text: the training text; its distinct characters, sorted, get the ids 0, 1, ...
    """

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise ValueError(f"`text` must be a non-empty string. Received: {text!r:.40}")
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """`(len(text),)` int32 ids; raises if `text` has a character the vocabulary lacks."""
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(
                f"`text` must use only the vocabulary's {len(self)} characters. "
                f"Received unknown characters: {unknown[:5]}"
            )
        return np.array([self.index[c] for c in text], np.int32)

    def decode(self, ids: ArrayLike) -> str:
        """Ids back to text."""
        return "".join(self.chars[i] for i in np.asarray(ids).reshape(-1).tolist())


def repeated_tokens(
    n: int,
    length: int,
    vocab_size: int,
    period: int | tuple[int, int] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """`n` sequences of random tokens, each a segment repeated until the sequence is full.

    A segment is `period` distinct tokens drawn at random from `range(vocab_size)`, so within
    one segment no token occurs twice; the sequence is that segment, again and again, cut at
    `length`. With `period = length // 2` the second half repeats the first.

    Args:
        n: number of sequences `B`.
        length: sequence length `T`.
        vocab_size: number of token ids; must be at least the longest period.
        period: an int (every sequence), a pair `(low, high)` (each sequence draws its own
            period from `low..high` inclusive), or None for `length // 2`.
        seed: anything `np.random.default_rng` accepts (an int, or a list such as `[seed, step]`).

    Returns:
        `(tokens, periods)`: int32 `(B, T)` and `(B,)`.
    """
    for name, value in (("n", n), ("length", length), ("vocab_size", vocab_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    low, high = (
        (length // 2,) * 2
        if period is None
        else ((period, period) if isinstance(period, int | np.integer) else tuple(period))
    )
    if not 1 <= low <= high <= length:
        raise ValueError(
            f"`period` must lie in 1..length ({length}), low <= high. Received: period={period!r}"
        )
    if high > vocab_size:
        raise ValueError(
            f"`vocab_size` must be >= the longest period ({high}) so a segment has distinct "
            f"tokens. Received: vocab_size={vocab_size}"
        )
    rng = np.random.default_rng(seed)
    periods = rng.integers(low, high + 1, size=n)  # (B,)
    tokens = np.empty((n, length), np.int32)  # (B, T)
    for row, p in enumerate(periods):
        segment = rng.permutation(vocab_size)[:p]
        tokens[row] = np.tile(segment, -(-length // p))[:length]
    return tokens, periods.astype(np.int32)
