"""The data of the small language models: seeded, well-formed, and what they claim to be."""

import math

import numpy as np
import pytest

from selfattention import toygpt


def test_sentences_are_seeded_and_grammatical():
    first = toygpt.sentences(300, seed=3)
    assert first == toygpt.sentences(300, seed=3)
    assert first != toygpt.sentences(300, seed=4)
    assert all(toygpt.is_grammatical(s) for s in first)
    words = {w for s in first for w in s.rstrip(".").split()}
    assert words <= toygpt.words()


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("the cat sees a dog.", True),
        ("the cats see two old dogs near the river.", True),
        ("two tired foxes watch the robot.", True),
        ("a fox watches the foxes in the school.", True),
        ("the cat see a dog.", False),  # agreement
        ("the cats sees a dog.", False),  # agreement
        ("a cats see a dog.", False),  # 'a' before a plural
        ("two cat sees a dog.", False),  # 'two' before a singular
        ("the cat sees a dog", False),  # no full stop
        ("the cat sees.", False),  # no object
        ("the cat sees a dog near a river.", False),  # places take 'the'
        ("the old red cat sees a dog.", False),  # at most one adjective
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_is_grammatical_by_hand(sentence, expected):
    assert toygpt.is_grammatical(sentence) is expected


def test_every_verb_form_agrees_with_every_subject():
    for noun in toygpt.NOUNS:
        for verb in toygpt.VERBS:
            third = verb + ("es" if verb.endswith("ch") else "s")
            plural = noun + ("es" if noun.endswith(("s", "x")) else "s")
            assert toygpt.is_grammatical(f"the {noun} {third} a dog.")
            assert toygpt.is_grammatical(f"the {plural} {verb} a dog.")
            assert not toygpt.is_grammatical(f"the {noun} {verb} a dog.")
            assert not toygpt.is_grammatical(f"the {plural} {third} a dog.")


def test_entropy_by_hand_and_by_sampling():
    # by hand: noun phrase = ln2 (number) + ln2 (determiner) + ln2 (adjective or not)
    # + ln(7)/2 (which adjective) + ln 10 (noun); place = H(0.4) + 0.4 ln 15
    noun_phrase = 3 * math.log(2) + math.log(7) / 2 + math.log(10)
    place = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6)) + 0.4 * math.log(15)
    assert toygpt.entropy_per_sentence() == pytest.approx(2 * noun_phrase + math.log(8) + place)
    # the probabilities the entropy assumes are those the generator uses
    sample = toygpt.sentences(4_000, seed=0)
    plural_subject = np.mean(
        [s.split()[1 if s.split()[1] not in toygpt.ADJECTIVES else 2][-1] == "s" for s in sample]
    )
    with_place = np.mean([any(f" {p} the " in s for p in ("near", "behind", "in")) for s in sample])
    assert abs(with_place - toygpt.P_PLACE) < 0.03
    assert abs(plural_subject - toygpt.P_PLURAL) < 0.03


def test_chars_round_trip_and_errors():
    chars = toygpt.Chars("the cat.")
    assert chars.chars == [" ", ".", "a", "c", "e", "h", "t"] and len(chars) == 7
    ids = chars.encode("a cat.")
    assert ids.dtype == np.int32 and chars.decode(ids) == "a cat."
    with pytest.raises(ValueError, match="`text` must use only the vocabulary's"):
        chars.encode("dog")
    with pytest.raises(ValueError, match="`text` must be a non-empty string"):
        toygpt.Chars("")


def test_repeated_tokens_repeat_with_their_period():
    tokens, periods = toygpt.repeated_tokens(50, 32, 20, period=(4, 16), seed=1)
    assert tokens.shape == (50, 32) and tokens.dtype == np.int32 and periods.shape == (50,)
    assert periods.min() >= 4 and periods.max() <= 16 and len(set(periods.tolist())) > 3
    for row, p in zip(tokens, periods, strict=True):
        assert len(set(row[:p].tolist())) == p  # a segment has distinct tokens
        np.testing.assert_array_equal(row[p:], row[: 32 - p])  # then it repeats
    half, _ = toygpt.repeated_tokens(3, 32, 20, seed=2)  # default period: the second half repeats
    np.testing.assert_array_equal(half[:, 16:], half[:, :16])
    again, _ = toygpt.repeated_tokens(50, 32, 20, period=(4, 16), seed=1)
    np.testing.assert_array_equal(tokens, again)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "`n` must be a positive integer"),
        ({"length": 2.5}, "`length` must be a positive integer"),
        ({"period": 40}, "`period` must lie in 1..length"),
        ({"period": (9, 5)}, "`period` must lie in 1..length"),
        ({"vocab_size": 8}, "`vocab_size` must be >= the longest period"),
    ],
    ids=["n", "length", "period-too-long", "period-reversed", "vocab"],
)
def test_repeated_tokens_errors(kwargs, message):
    args = {"n": 2, "length": 32, "vocab_size": 32, **kwargs}
    with pytest.raises(ValueError, match=message):
        toygpt.repeated_tokens(**args)


def test_sentences_error():
    with pytest.raises(ValueError, match="`n` must be a non-negative integer"):
        toygpt.sentences(-1)
