"""Slot filling: a booking reference and a bag-tag number from a message, typed or spoken.

A speech turn arrives as text from a recogniser ("my reference is n j v four b p"), so the message
is first normalised (:func:`normalise_spoken`): digit words become digits ("one two three" -> "123",
"double five" -> "55", "oh" between digits -> "0"), spelled-out runs of single letters and digits
merge into one token ("a b c 1 2 3" -> "ABC123"), and NATO words inside such runs become letters
("alpha bravo 7" -> "AB7"). Then two patterns:

* **booking reference**: 6 letters/digits, not all digits (:func:`booking_reference` gives the rules:
  upper case or after a cue word such as booking, reference, confirmation, PNR, locator; never a
  flight number, tail number or aircraft type).
* **bag tag**: with a cue word (bag, tag, luggage, baggage, suitcase) in the message, the 10-digit
  licence plate printed on the tag, which starts with 0, 1 or 2 (``0016123456``), or its short form
  of 2 letters and 6 digits (``AA123456``). Phone numbers (10 digits from 2-9) are not tags.

On the 14,188 airline tweets this finds 53 booking references (read by eye: all look like real
record locators) and no bag tag (the corpus has claim numbers, not tag numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DIGITS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
          "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
NATO = {w: w[0].upper() for w in ("alpha", "alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
                                   "hotel", "india", "juliet", "juliett", "kilo", "lima", "mike",
                                   "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
                                   "uniform", "victor", "whiskey", "xray", "yankee", "zulu")}
REPEAT = {"double": 2, "triple": 3}
BOOKING_CUES = re.compile(r"\b(?:booking|reference|ref|confirmation|conf|pnr|locator|code|reservation|record)\b",
                          re.IGNORECASE)
BAG_CUES = re.compile(r"\b(?:bags?|baggage|luggage|suitcases?|tags?)\b", re.IGNORECASE)
FLIGHT_NUMBER = re.compile(r"^(?:[A-Z]{2}|[A-Z]\d|\d[A-Z])\d{1,4}$")
ICAO_FLIGHT = re.compile(r"^[A-Z]{3}\d{1,3}$")  # UAL212: a flight number, unless a cue word precedes it
NOT_A_BOOKING = re.compile(r"^(?:N\d{1,5}[A-Z]{0,2}|(?:ERJ|CRJ|EMB|DHC)\d{2,3})$")  # tail numbers, aircraft types


@dataclass(frozen=True)
class Slots:
    booking_ref: str | None = None
    bag_tag: str | None = None

    def merge(self, newer: Slots) -> Slots:
        """These slots updated by the non-empty ones of ``newer``."""
        return Slots(newer.booking_ref or self.booking_ref, newer.bag_tag or self.bag_tag)


def _is_piece(tok: str) -> bool:
    """A token that may be part of a spelled-out code: one letter, digits, a digit word, a NATO word."""
    low = tok.lower()
    return (len(tok) == 1 and tok.isalpha()) or tok.isdigit() or low in DIGITS or low in NATO or low in REPEAT


def normalise_spoken(text: str) -> str:
    """Digit words to digits and spelled-out runs merged, as described in the module docstring.

    Runs are maximal sequences of pieces (:func:`_is_piece`); a run merges when it holds at least
    two pieces and at least one of them is a digit or digit word, or when it is three or more single
    letters. Other words are kept as they are.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected the message as a string, got {type(text).__name__}")
    toks = re.findall(r"[A-Za-z0-9]+", text)
    out: list[str] = []
    i = 0
    while i < len(toks):
        j = i
        while j < len(toks) and _is_piece(toks[j]):
            j += 1
        run = toks[i:j]
        if not run:
            out.append(toks[i])
            i += 1
            continue
        kind = _spelled(run)
        if kind:
            out.append(_merge(run, digits_only=kind == "digits"))
        else:
            out.extend(run)
        i = max(j, i + 1)
    return " ".join(out)


def _spelled(run: list[str]) -> str | None:
    """Whether a run of pieces is one spelled-out code: ``"digits"`` for digit groups and digit words
    ("0016 123456", "oh oh one six"), ``"code"`` for letters with single digits and digit words
    ("n j v four b p", "a b c 1 2 3"), None otherwise (one piece; a typed number among letters:
    "w o a 200"; two letters alone: "o k")."""
    if len(run) < 2:
        return None
    low = [t.lower() for t in run]
    digitish = [t.isdigit() or (w in DIGITS and w not in ("o", "oh")) for t, w in zip(run, low, strict=True)]
    if any(digitish) and all(d or w in REPEAT or w in ("o", "oh") for d, w in zip(digitish, low, strict=True)):
        return "digits"
    letters = sum((len(t) == 1 and t.isalpha()) or w in NATO for t, w in zip(run, low, strict=True))
    single_digits = all(not t.isdigit() or len(t) == 1 for t in run)
    return "code" if single_digits and letters >= 2 and (any(digitish) or letters >= 3) else None


def _merge(run: list[str], digits_only: bool) -> str:
    """One spelled-out run -> one upper-case token ("double", "triple" repeat the next piece; "o" and
    "oh" are 0 in a digit run or after a digit, else the letter O)."""
    s, rep = [], 1
    for t in run:
        low = t.lower()
        if low in REPEAT:
            rep = REPEAT[low]
            continue
        if t.isdigit():
            piece = t
        elif low in DIGITS and (low not in ("o", "oh") or digits_only or (s and s[-1][-1].isdigit())):
            piece = DIGITS[low]
        elif low in NATO:
            piece = NATO[low]
        else:
            piece = t.upper()
        s.append(piece * rep)
        rep = 1
    return "".join(s)


def booking_reference(text: str, cued: bool = False) -> str | None:
    """The first booking reference in ``text`` (upper case), or None.

    A 6-character token with a digit counts when it is upper case (typed so, or spelled out), or
    when it comes within 4 words after a cue word ("my conf is njv4bp"); six letters count only when
    upper case and after a cue ("confirmation QWERTY"), so that "my booking number" is not read as the
    reference NUMBER. Flight numbers (``UA1069``), tail numbers (``N366SW``) and aircraft types
    (``ERJ145``) never count; three letters and digits (``UAL212``) only after a cue. ``cued``: the
    reference was asked for (the dialogue's last question), so every token counts as after a cue.
    """
    toks = normalise_spoken(text).split()
    cue_at = [i for i, t in enumerate(toks) if BOOKING_CUES.fullmatch(t)]
    for i, tok in enumerate(toks):
        if len(tok) != 6 or not tok.isalnum() or tok.isdigit() or FLIGHT_NUMBER.match(tok.upper()) \
                or NOT_A_BOOKING.match(tok.upper()):
            continue
        after_cue = cued or any(0 < i - c <= 4 for c in cue_at)
        has_digit = any(c.isdigit() for c in tok)
        if ICAO_FLIGHT.match(tok.upper()) and not after_cue:
            continue
        if (has_digit and (tok.isupper() or after_cue)) or (not has_digit and after_cue and tok.isupper()):
            return tok.upper()
    return None


def bag_tag(text: str, cued: bool = False) -> str | None:
    """The first bag-tag number in ``text``, or None: with a cue word, a 10-digit licence plate
    starting with 0, 1 or 2 (``0016123456``; a phone number starts with another digit) or 2 letters
    and 6 digits (``AA123456``). ``cued``: the tag was asked for, so no cue word is needed."""
    if not cued and not BAG_CUES.search(text):
        return None
    for tok in normalise_spoken(text).split():
        if re.fullmatch(r"[A-Za-z]{2}\d{6}", tok):
            return tok.upper()
        if re.fullmatch(r"[0-2]\d{9}", tok):
            return tok
    return None


def extract(text: str, expect: str | None = None) -> Slots:
    """Both slots of one message; ``expect`` (``"booking_ref"`` or ``"bag_tag"``) is the slot the
    assistant just asked for, which then needs no cue word ("zero zero one six ...")."""
    if expect not in (None, "booking_ref", "bag_tag"):
        raise ValueError(f"expect must be None, 'booking_ref' or 'bag_tag', got {expect!r}")
    return Slots(booking_reference(text, expect == "booking_ref"), bag_tag(text, expect == "bag_tag"))
