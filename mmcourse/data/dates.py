"""Date normalisation pairs, generated in code: ``"3rd of March 2021" -> "2021-03-03"``.

A *format* is a template such as ``"{dth} of {month} {yyyy}"``. The training formats
and the held-out test formats are disjoint, and a held-out example is never a string
that a training format could also have produced (``"3rd of May 2021"`` is both
``{dth} of {mon}`` and ``{dth} of {month}``: such examples are skipped). So the test
set measures generalisation to *unseen formats*, recombinations of parts seen in training:
every field rendering and separator of a held-out format occurs in some training format.

>>> splits = date_splits(n_train=2000, n_val=200, n_test=500, seed=0)
>>> splits["test"][0]
DatePair(source='...', target='YYYY-MM-DD', format='...')
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
from typing import NamedTuple

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]  # fmt: skip
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)

# Fields: {d} 3, {dd} 03, {dth} 3rd, {m} 3, {mm} 03, {month} March, {mon} Mar,
# {MONTH} MARCH, {yyyy} 2021, {weekday} Wednesday.
TRAIN_FORMATS: tuple[str, ...] = (
    "{d} {month} {yyyy}",
    "{dth} of {month} {yyyy}",
    "the {dth} of {month}, {yyyy}",
    "{month} {d}, {yyyy}",
    "{month} {dth}, {yyyy}",
    "{mon} {d}, {yyyy}",
    "{d} {mon} {yyyy}",
    "{dth} {mon} {yyyy}",
    "{d}-{mon}-{yyyy}",
    "{MONTH} {d} {yyyy}",
    "{weekday}, {d} {month} {yyyy}",
    "{weekday}, {month} {d}, {yyyy}",
    "{dd}/{mm}/{yyyy}",
    "{d}/{mm}/{yyyy}",
    "{dd}/{m}/{yyyy}",
    "{dd}.{mm}.{yyyy}",
    "{d}.{m}.{yyyy}",
    "{yyyy}-{mm}-{dd}",
    "{yyyy}/{mm}/{dd}",
)
TEST_FORMATS: tuple[str, ...] = (
    "{dth} of {mon} {yyyy}",  # "{dth} of" seen before {month}; {dth} {mon} seen without "of"
    "{mon} {dth}, {yyyy}",  # "{month} {dth}," and "{mon} {d}," seen
    "{d}/{m}/{yyyy}",  # "{d}/" seen before {mm}, "/{m}/" after {dd}: never both unpadded
    "{weekday}, {d} {mon} {yyyy}",  # "{weekday}, {d} {month}" and "{d} {mon} {yyyy}" seen
)
# Every held-out format recombines parts of training formats: the same renderings of day, month
# and year and the same separators, each seen in training, only never in this combination.

_FIELD = re.compile(r"\{(\w+)\}")


class DatePair(NamedTuple):
    source: str  # e.g. "3rd of March 2021"
    target: str  # ISO 8601, e.g. "2021-03-03"
    format: str  # the template that produced ``source``


def ordinal(n: int) -> str:
    """``1 -> "1st"``, ``2 -> "2nd"``, ``11 -> "11th"``, ``23 -> "23rd"``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def render(date: dt.date, fmt: str) -> str:
    """Write ``date`` in format ``fmt`` (see :data:`TRAIN_FORMATS`)."""
    month = MONTHS[date.month - 1]
    fields = {
        "d": str(date.day), "dd": f"{date.day:02d}", "dth": ordinal(date.day),
        "m": str(date.month), "mm": f"{date.month:02d}", "month": month, "mon": month[:3],
        "MONTH": month.upper(), "yyyy": f"{date.year:04d}", "weekday": WEEKDAYS[date.weekday()],
    }  # fmt: skip
    unknown = set(_FIELD.findall(fmt)) - set(fields)
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)} in format {fmt!r}")
    return fmt.format(**fields)


@functools.cache
def format_regex(fmt: str) -> re.Pattern:
    """A regex matching exactly the strings that ``fmt`` can produce (for any date)."""
    months = "|".join(MONTHS)
    parts = {
        "d": r"[1-9]|[12]\d|3[01]", "dd": r"0[1-9]|[12]\d|3[01]",
        "dth": r"(?:[1-9]|[12]\d|3[01])(?:st|nd|rd|th)", "m": r"[1-9]|1[0-2]",
        "mm": r"0[1-9]|1[0-2]", "month": months, "mon": "|".join(m[:3] for m in MONTHS),
        "MONTH": months.upper(), "yyyy": r"\d{4}", "weekday": "|".join(WEEKDAYS),
    }  # fmt: skip
    out, pos = "", 0
    for match in _FIELD.finditer(fmt):
        out += re.escape(fmt[pos : match.start()]) + f"(?:{parts[match.group(1)]})"
        pos = match.end()
    return re.compile(out + re.escape(fmt[pos:]))


_FIELD_GROUP = {"d": "day", "dd": "day", "dth": "day", "m": "month", "mm": "month", "month": "month",
                "mon": "month", "MONTH": "month", "yyyy": "year"}


def field_spans(source: str, fmt: str) -> dict[str, tuple[int, int]]:
    """Where the day, month and year of ``source`` (written in ``fmt``) are: ``{"day": (start, end), ...}``,
    character offsets as in ``source[start:end]``. ``"3rd of Mar 2021"`` -> day (0, 3), month (7, 10),
    year (11, 15). Raises ``ValueError`` if ``fmt`` cannot produce ``source``."""
    out, pos = "", 0
    for match in _FIELD.finditer(fmt):
        name = match.group(1)
        field = format_regex("{" + name + "}").pattern
        out += re.escape(fmt[pos : match.start()])
        out += f"(?P<{_FIELD_GROUP[name]}>{field})" if name in _FIELD_GROUP else f"(?:{field})"
        pos = match.end()
    found = re.fullmatch(out + re.escape(fmt[pos:]), source)
    if found is None:
        raise ValueError(f"format {fmt!r} cannot produce {source!r}")
    return {k: found.span(k) for k in ("day", "month", "year")}


def format_parts(fmt: str) -> set[str]:
    """The parts of a format: its fields and its separators,
    ``"{d}/{m}/{yyyy}" -> {"{d}", "{m}", "{yyyy}", "/"}``."""
    fields = {f"{{{name}}}" for name in _FIELD.findall(fmt)}
    return fields | {sep for sep in _FIELD.split(fmt)[::2] if sep}


def matches_any(source: str, formats: tuple[str, ...]) -> bool:
    """True when one of ``formats`` could have produced ``source``."""
    return any(format_regex(f).fullmatch(source) for f in formats)


def date_pairs(n: int, formats: tuple[str, ...], seed: int = 0,
               exclude_formats: tuple[str, ...] = ()) -> list[DatePair]:
    """``n`` pairs: a uniformly random date in 1950-2049 written in a random one of ``formats``.

    Deterministic given ``seed``. Sources that a format in ``exclude_formats`` could also
    have produced are skipped (and replaced by new draws).
    """
    if n < 0 or not formats:
        raise ValueError(f"need n >= 0 and at least one format, got n={n}, formats={formats}")
    rng = random.Random(seed)
    span = (LAST - FIRST).days
    out: list[DatePair] = []
    while len(out) < n:
        date = FIRST + dt.timedelta(days=rng.randint(0, span))
        fmt = rng.choice(formats)
        source = render(date, fmt)
        if exclude_formats and matches_any(source, exclude_formats):
            continue
        out.append(DatePair(source, date.isoformat(), fmt))
    return out


def date_splits(n_train: int, n_val: int, n_test: int, seed: int = 0) -> dict[str, list[DatePair]]:
    """``train`` and ``val`` from :data:`TRAIN_FORMATS`; ``test`` from the held-out :data:`TEST_FORMATS`
    (only sources that no training format could produce)."""
    return {
        "train": date_pairs(n_train, TRAIN_FORMATS, seed),
        "val": date_pairs(n_val, TRAIN_FORMATS, seed + 1),
        "test": date_pairs(n_test, TEST_FORMATS, seed + 2, exclude_formats=TRAIN_FORMATS),
    }
