"""The toy data sets of the applications chapter: seeded, well-formed, and what they claim to be."""

import datetime
import re
from pathlib import Path

import numpy as np
import pytest

from selfattention import toydata

BOOK = Path(__file__).resolve().parent.parent / "book"


def test_date_pairs_are_seeded_and_correct():
    sources, targets = toydata.date_pairs(200, seed=3)
    assert (sources, targets) == toydata.date_pairs(200, seed=3)
    assert sources != toydata.date_pairs(200, seed=4)[0]
    for source, target in zip(sources, targets, strict=True):
        date = datetime.date.fromisoformat(target)
        assert str(date.year) in source
        assert target == date.isoformat()


def test_every_format_appears_and_is_unambiguous():
    day = datetime.date(2021, 3, 3)
    written = [fmt(day) for fmt in toydata.DATE_FORMATS.values()]
    assert written == list(toydata.DATE_FORMATS)  # the keys are the formats applied to 3 March 2021


def test_char_vocab_round_trip_and_errors():
    vocab = toydata.CharVocab(["2021-03-03", "3 March 2021"])
    ids = vocab.encode(["2021-03-03"], 12, start=True, end=True)
    assert ids.shape == (1, 12) and ids[0, 0] == vocab.START and vocab.END in ids[0]
    assert vocab.decode(ids[0]) == "2021-03-03"
    with pytest.raises(ValueError, match="`length` must be >= 12"):
        vocab.encode(["2021-03-03"], 11, start=True, end=True)


def test_retrieval_task_answer_is_the_asked_facts_value():
    keys, values, answers, distance = toydata.retrieval_task(50, length=32, seed=0)
    assert keys.shape == values.shape == (50, 32)
    for row in range(50):
        asked = keys[row, 0]
        (position,) = np.flatnonzero(keys[row, 1:] == asked) + 1
        assert values[row, position] - 1 == answers[row]
        assert distance[row] == 31 - position
        assert (keys[row, 1:] > 0).sum() == 4


def test_topic_documents_mark_the_topic_sentences():
    docs, topics, is_topic = toydata.topic_documents(30, seed=1)
    assert docs.shape == (30, 8, 6) and is_topic.sum(axis=1).tolist() == [2] * 30
    topic_words = (docs >= 1) & (docs <= 40)
    assert not topic_words[~is_topic].any()  # filler sentences hold no topic word
    for row in range(30):
        words = docs[row][is_topic[row]]
        words = words[words <= 40]
        assert ((words - 1) // 10 == topics[row]).all()


WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTH_NAMES = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


def test_generated_weekdays_agree_with_the_calendar():
    sources, targets = toydata.date_pairs(2_000, seed=0)
    checked = 0
    for source, target in zip(sources, targets, strict=True):
        name = source.split(",")[0]
        if name in WEEKDAYS:
            assert name == WEEKDAYS[datetime.date.fromisoformat(target).weekday()], source
            checked += 1
    assert checked > 150  # one format in eight names the weekday


# "Wednesday, 25 November 2026" or "Wednesday, November 25, 2026", as typed into the book's text
WRITTEN_DATE = re.compile(
    rf"\b({'|'.join(WEEKDAYS)}),? (?:(\d{{1,2}}) ({'|'.join(MONTH_NAMES)})"
    rf"|({'|'.join(MONTH_NAMES)}) (\d{{1,2}}),?) (\d{{4}})\b"
)
BOOK_TEXTS = sorted(BOOK.glob("*.ipynb")) + sorted(BOOK.glob("*.md"))


@pytest.mark.parametrize("path", BOOK_TEXTS, ids=lambda p: p.name)
def test_dates_typed_in_the_book_name_the_right_weekday(path):
    text = path.read_text(encoding="utf-8")
    for match in WRITTEN_DATE.finditer(text):
        weekday, day1, month1, month2, day2, year = match.groups()
        day, month = int(day1 or day2), MONTH_NAMES.index(month1 or month2) + 1
        date = datetime.date(int(year), month, day)
        assert weekday == WEEKDAYS[date.weekday()], f"{match.group(0)!r} is a {date:%A}"


def test_the_weekday_check_catches_a_wrong_weekday():
    (match,) = WRITTEN_DATE.finditer("on Saturday, 25 November 2026 we")
    assert match.group(1) == "Saturday" and datetime.date(2026, 11, 25).weekday() == 2
