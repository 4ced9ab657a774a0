"""Slot filling: booking references and bag tags, typed and spoken, and what must not match."""

from __future__ import annotations

import pytest

from mmcourse.assistant.slots import Slots, bag_tag, booking_reference, extract, normalise_spoken

BOOKINGS = [  # (message, booking reference)
    ("Confirmation number: NJV4BP - All I need is email confirmation", "NJV4BP"),  # real corpus tweets
    ("please help regarding PNR A3ZZ0F. Why am I now waitlisted", "A3ZZ0F"),
    ("#PH6RPS", "PH6RPS"),
    ("it took 3hours and my conf is qwe12r", "QWE12R"),  # lower case after a cue; not "3hours"
    ("my confirmation is QWERTY", "QWERTY"),  # six letters: upper case and cued
    ("my booking reference is n j v four b p", "NJV4BP"),  # spoken letter by letter
    ("my reference is alpha bravo charlie one two three", "ABC123"),  # NATO alphabet
    ("the code is x y double seven z one", "XY77Z1"),
    ("reference ABC123 please", "ABC123"),
]
NOT_BOOKINGS = [
    "I was on UA1069 today and left my sunglasses",  # flight number
    "Row 9 window cover on N366SW could use some LUV",  # tail number
    "do you allow a rear facing car seat on an ERJ145",  # aircraft type
    "#LAX #sunrise UAL212 LAX-JFK",  # three-letter flight number, no cue
    "my booking number please",  # "number" is not a reference
    "QWERTY keyboard on the seatback screen",  # six capitals without a cue
    "can't change w/o a $200 fee",  # "w o a 200" must not merge into W0A200
    "any earlier flights on 03.03. I'm booked on 1504",
    "it took 3hours",
]
TAGS = [
    ("bag tag 0016 123456, still missing", "0016123456"),
    ("my tag number is zero zero one six one two three four five six", "0016123456"),
    ("the tag says AA123456", "AA123456"),
    ("luggage tag oh oh one six double one two three four five", "0016112345"),
]
NOT_TAGS = [
    "call me at 8004337300",  # no cue word
    "Need to track lost luggage. Need ph # for human 800-335-2247.",  # a phone number is not a tag
    "1k us651621",  # 2 letters + 6 digits without a cue
    "purchase.error (SW900001)",
]


@pytest.mark.parametrize("text,want", BOOKINGS)
def test_booking_references(text, want):
    assert booking_reference(text) == want


@pytest.mark.parametrize("text", NOT_BOOKINGS)
def test_not_booking_references(text):
    assert booking_reference(text) is None


@pytest.mark.parametrize("text,want", TAGS)
def test_bag_tags(text, want):
    assert bag_tag(text) == want


@pytest.mark.parametrize("text", NOT_TAGS)
def test_not_bag_tags(text):
    assert bag_tag(text) is None


def test_spoken_normalisation():
    assert normalise_spoken("one two three") == "123"
    assert normalise_spoken("double five six seven oh one") == "556701"
    assert normalise_spoken("oh no, one of your agents") == "oh no one of your agents"  # lone words stay
    assert normalise_spoken("a b c 1 2 3") == "ABC123"
    assert normalise_spoken("o k thanks") == "o k thanks"  # two letters alone are not a code
    assert normalise_spoken("stay at the hotel 5 nights") == "stay at the hotel 5 nights"
    with pytest.raises(ValueError, match="as a string"):
        normalise_spoken(None)


def test_extract_and_merge():
    s = extract("my conf is NJV4BP and my bag tag is 0016123456")
    assert s == Slots("NJV4BP", "0016123456")
    assert Slots("ABC123").merge(Slots(None, "0016123456")) == Slots("ABC123", "0016123456")
    assert Slots("ABC123").merge(Slots("XYZ789")).booking_ref == "XYZ789"  # the newer one wins
    assert extract("hello") == Slots()


def test_an_expected_slot_needs_no_cue_word():
    spoken = "zero zero one six one two three four five six"
    assert extract(spoken) == Slots()  # 10 digits alone could be a phone number ...
    assert extract(spoken, expect="bag_tag") == Slots(None, "0016123456")  # ... unless the tag was asked for
    assert extract("it's abc123", expect="booking_ref").booking_ref == "ABC123"
    assert extract("it's abc123").booking_ref is None
    with pytest.raises(ValueError, match="expect must be"):
        extract("x", expect="pnr")
