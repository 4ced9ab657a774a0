"""The scripted conversations of chapter 13: the script itself, and the scoring of a played conversation."""

from __future__ import annotations

from collections import Counter

import pytest

from mmcourse.assistant import conversations as C
from mmcourse.data.intents import INTENTS


def test_the_script_has_50_or_more_named_conversations_covering_every_outcome():
    assert len(C.SCRIPT) >= 50 and len({c.name for c in C.SCRIPT}) == len(C.SCRIPT)
    turns = [t for c in C.SCRIPT for t in c.turns]
    assert {t.intent for t in turns if t.intent} == set(INTENTS)  # every intent is expected somewhere
    assert {t.modality for t in turns} == {"text", "image", "audio"}
    assert sum(t.escalate is True for t in turns) >= 10 and sum(t.escalate is False for t in turns) >= 10
    assert sum(t.slot is not None for t in turns) >= 15 and sum(t.recognised is False for t in turns) >= 4
    assert Counter(c.category for c in C.SCRIPT)["digits"] == sum(c.needs_digits for c in C.SCRIPT)


def test_a_turn_is_exactly_one_input_with_known_expectations():
    with pytest.raises(ValueError, match="exactly one of say, picture, speak or digits"):
        C.Turn(say="hi", picture="mnist:0")
    with pytest.raises(ValueError, match="intent must be one of"):
        C.Turn(say="hi", intent="lost_luggage")
    with pytest.raises(ValueError, match="action must be one of"):
        C.Turn(say="hi", action="reply")


class FakeResponse:
    def __init__(self, status: int, body: dict):
        self.status_code, self.body, self.text = status, body, str(body)

    def json(self) -> dict:
        return self.body


class FakeClient:
    """Answers each post with the next canned (status, JSON) and records what was sent."""

    def __init__(self, answers):
        self.answers, self.sent = list(answers), []

    def post(self, path, **kw):
        self.sent.append((path, kw))
        return FakeResponse(*self.answers.pop(0))


def ok(**kw) -> tuple[int, dict]:
    return 200, {"intent": "baggage", "action": "ask_slot", "escalate": False,
                 "slots": {"bag_tag": None, "booking_ref": None}, "latency_ms": 10.0, **kw}


def test_run_names_every_missed_expectation_and_sends_each_turn_to_its_route():
    conv = C.Conversation("x", "baggage", (
        C.Turn(say="my bag", intent="baggage", action="answered", escalate=False),
        C.Turn(say="0016123456", slot=("bag_tag", "0016123456")),
        C.Turn(picture="fashion:Bag:0", recognised=True, item="Bag"),
    ))
    client = FakeClient([ok(), ok(slots={"bag_tag": "0016123457"}),
                         (200, {"recognised": True, "item": "Sandal", "latency_ms": 30.0})])
    r = C.run(client, conv, session="s1")
    assert not r.ok and r.failures == ["turn 2: bag_tag '0016123457', expected '0016123456'",
                                       "turn 3: item 'Sandal', expected 'Bag'"]
    assert [p for p, _ in client.sent] == ["/chat", "/chat", "/image"]
    assert client.sent[0][1]["json"] == {"session": "s1", "text": "my bag"}
    assert client.sent[2][1]["files"]["image"][1].startswith(b"\x89PNG")  # a real Fashion-MNIST PNG
    assert r.latency_ms == [("text", 10.0), ("text", 10.0), ("image", 30.0)]


def test_an_http_error_or_a_missing_spoken_reply_fails_the_conversation():
    conv = C.Conversation("y", "anger", (C.Turn(say="rude!", escalate=True),))
    r = C.run(FakeClient([(422, {"error": "field 'text' is empty"})]), conv)
    assert not r.ok and r.failures[0].startswith("turn 1: HTTP 422")
    assert C.check(C.Turn(speak="where is my bag", intent="baggage"), ok(reply_audio=None)[1]) == ["no spoken reply"]
    assert C.check(C.Turn(speak="where is my bag", intent="baggage"), ok(reply_audio="data:audio/wav;base64,UklG")[1]) == []
    assert C.check(C.Turn(say="x", action="answered"), ok(action="answer")[1]) == []
    assert C.check(C.Turn(say="x", action="answered"), ok(action="unsure")[1]) == ["action 'unsure', expected 'answered'"]


def test_evaluate_counts_successes_by_category_and_takes_median_latencies():
    script = (C.Conversation("a", "baggage", (C.Turn(say="1", intent="baggage"),)),
              C.Conversation("b", "baggage", (C.Turn(say="2", intent="other"),)),
              C.Conversation("c", "thanks", (C.Turn(say="3", intent="baggage"), C.Turn(say="4", intent="baggage"))))
    client = FakeClient([ok(latency_ms=5.0), ok(latency_ms=7.0), ok(latency_ms=100.0), ok(latency_ms=6.0)])
    out = C.evaluate(client, script)
    assert out["n"] == 3 and out["task_success"] == pytest.approx(2 / 3)
    assert out["by_category"] == {"baggage": 0.5, "thanks": 1.0}
    assert out["latency_ms"] == {"text": 6.5}  # median of 5, 7, 100, 6
    assert out["failures"] == {"b": ["turn 1: intent 'baggage', expected 'other'"]}
