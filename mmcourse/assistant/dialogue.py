"""The dialogue manager: per-session state, intent, slots, escalation and the reply (pure Python).

One call per customer turn: ``Assistant.turn(session_id, text) -> Reply``. The components come in
as callables, so the same manager runs with MiniLM models, with chapter 08/09 models, or with stubs
in tests:

* ``kb``: a :class:`~mmcourse.assistant.knowledge.KnowledgeBase` (``search(text, k, intent)``);
* ``classify(text) -> (intent, confidence)``, e.g. :func:`mmcourse.assistant.intents.classifier`;
* ``is_angry(text) -> probability`` (optional): the escalation model, injected later (chapter 13
  uses a sentiment model); at ``anger_threshold`` or above, the turn is escalated.

The policy, in order: a request for a human escalates (a hand-over is offered); thanks gets the thanks
reply; otherwise the best article answers, unless retrieval is unsure (then the assistant says so and
offers a human; twice in a row escalates). Anger (``is_angry`` at the threshold or above) escalates too,
without losing the answer: the reply opens with an apology, keeps the article (and the slot question), and
offers a human; a sarcastic "thanks" from an angry customer is answered, not thanked. A missing booking
reference or bag tag is asked for once per session; a turn that only gives it is acknowledged and
keeps the session's intent. State is bounded: at most ``max_sessions`` sessions (least recently used
dropped first) and ``max_turns`` turns kept per session.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mmcourse.assistant.knowledge import Article, KnowledgeBase
from mmcourse.assistant.slots import Slots, extract, normalise_spoken
from mmcourse.data.intents import INTENTS

HUMAN = re.compile(r"\b(?:speak|talk|chat|connect|transfer|put)\b[^.?!]{0,20}\b(?:human|person|agent|"
                   r"representative|someone|somebody)\b|\b(?:human|live|real) (?:agent|person|being)\b",
                   re.IGNORECASE)  # a request for a human, not a mention of one ("your agent was rude")
NEEDS = {"baggage": "bag_tag", "delay_cancellation": "booking_ref", "booking_change_refund": "booking_ref"}
ASK = {"booking_ref": "Could you give me your booking reference (6 letters and digits, e.g. ABC123)?",
       "bag_tag": "Could you give me the number on your bag tag receipt (10 digits)?"}
SLOT_NAMES = {"booking_ref": "booking reference", "bag_tag": "bag tag number"}
APOLOGY = "I'm sorry about this, and I understand your frustration."
OFFER = "Would you like me to connect you with a human agent?"
UNSURE = "I'm not sure I understood your question."
OPENING = {"request": "Of course.", "unsure": "I'm still not sure I can help with this."}


@dataclass(frozen=True)
class Reply:
    """What the assistant answers to one turn. ``action``: ``answer``, ``ask_slot``, ``thanks``,
    ``unsure`` or ``escalate`` (a hand-over; ``reason``: ``request`` or ``unsure``); ``reason="anger"``:
    any of the first four, answered with an apology and a human offered; ``anger``: the escalation
    model's probability (None without one)."""

    text: str
    action: str
    intent: str
    confidence: float
    slots: Slots
    article_id: str | None = None
    anger: float | None = None
    reason: str | None = None

    @property
    def escalated(self) -> bool:
        """A human was offered: a hand-over (``action == "escalate"``), or an answer to an angry customer."""
        return self.action == "escalate" or self.reason == "anger"


@dataclass
class Session:
    """One conversation: its last turns ``(speaker, text)``, intent, slots and flags."""

    turns: deque = field(default_factory=deque)
    intent: str | None = None
    slots: Slots = field(default_factory=Slots)
    asked: set[str] = field(default_factory=set)  # slots already asked for
    pending: str | None = None  # the slot asked for in the last reply
    unsure: int = 0  # consecutive unsure answers
    escalated: bool = False


class Assistant:
    """The dialogue manager (see the module docstring)."""

    def __init__(self, kb: KnowledgeBase, classify: Callable[[str], tuple[str, float]],
                 is_angry: Callable[[str], float] | None = None, anger_threshold: float = 0.5,
                 max_sessions: int = 1000, max_turns: int = 20, max_chars: int = 1000, prefer_margin: float = 0.05):
        if max_sessions < 1 or max_turns < 2 or max_chars < 1:
            raise ValueError(f"max_sessions >= 1, max_turns >= 2 and max_chars >= 1 are needed, got "
                             f"{max_sessions}, {max_turns}, {max_chars}")
        if not 0.0 < anger_threshold <= 1.0:
            raise ValueError(f"anger_threshold is a probability in (0, 1], got {anger_threshold}")
        self.kb, self.classify, self.is_angry = kb, classify, is_angry
        self.anger_threshold, self.prefer_margin = anger_threshold, prefer_margin
        self.max_sessions, self.max_turns, self.max_chars = max_sessions, max_turns, max_chars
        self.sessions: OrderedDict[str, Session] = OrderedDict()

    def session(self, session_id: str) -> Session:
        """The session's state (created if new; the least recently used is dropped beyond the bound)."""
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(f"session_id must be a non-empty string, got {session_id!r}")
        s = self.sessions.get(session_id)
        if s is None:
            s = self.sessions[session_id] = Session(turns=deque(maxlen=self.max_turns))
            while len(self.sessions) > self.max_sessions:
                self.sessions.popitem(last=False)
        self.sessions.move_to_end(session_id)
        return s

    def end(self, session_id: str) -> None:
        """Forget a session (nothing happens if it is unknown)."""
        self.sessions.pop(session_id, None)

    def _article(self, text: str, intent: str) -> tuple[Article | None, float]:
        """The best article: the intent's own best unless another beats it by ``prefer_margin``."""
        best = self.kb.search(text, k=1)
        own = self.kb.search(text, k=1, intent=intent)
        pick = own if own.hits and own.score >= best.score - self.prefer_margin else best
        return (None if pick.unsure else pick.article), pick.score

    def turn(self, session_id: str, text: str) -> Reply:
        """Handle one customer message and return the reply (also stored in the session)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text must be a non-empty string, got {text!r}")
        if len(text) > self.max_chars:
            raise ValueError(f"text is {len(text)} characters; at most max_chars={self.max_chars} are accepted")
        s = self.session(session_id)
        s.turns.append(("customer", text))
        new = extract(text, expect=s.pending)
        filled = [n for n in ("booking_ref", "bag_tag") if getattr(new, n) and not getattr(s.slots, n)]
        s.slots = s.slots.merge(new)
        intent, conf = self.classify(text)
        if intent not in INTENTS:
            raise ValueError(f"classify returned {intent!r}, not one of {INTENTS}")
        # a turn that answers the slot question ("it's NJV4BP", "zero zero one six ...") keeps the session's
        # intent; a spelled-out code counts as one word
        slot_only = s.pending in filled and s.intent is not None and (
            intent in ("other", s.intent) or len(normalise_spoken(text).split()) <= 6)
        if slot_only:
            intent = s.intent
        anger = None if self.is_angry is None else float(self.is_angry(text))
        if HUMAN.search(text):
            reply = self._escalate(s, text, intent, conf, anger, "request")
        elif intent == "thanks_praise" and not (anger is not None and anger >= self.anger_threshold):
            thanks = next((a for a in self.kb.articles if a.intent == "thanks_praise"), None)
            reply = self._reply(s, "You're welcome! " + (thanks.text if thanks else "Thank you for writing to us."),
                                "thanks", intent, conf, thanks.id if thanks else None, anger)
        else:
            reply = self._answer(s, text, intent, conf, anger, filled if slot_only else [])
        if anger is not None and anger >= self.anger_threshold and reply.action != "escalate":
            # an angry customer still gets the answer (and the slot question), with an apology and a human offered
            s.escalated = True
            body = reply.text if OFFER in reply.text else f"{reply.text} {OFFER}"
            reply = Reply(f"{APOLOGY} {body}", reply.action, reply.intent, reply.confidence, reply.slots,
                          reply.article_id, anger, "anger")
        s.intent = reply.intent
        s.turns.append(("assistant", reply.text))
        return reply

    def _reply(self, s: Session, text: str, action: str, intent: str, conf: float, article_id: str | None,
               anger: float | None) -> Reply:
        s.unsure = s.unsure + 1 if action == "unsure" else 0
        s.pending = None if action != "ask_slot" else s.pending
        return Reply(text, action, intent, conf, s.slots, article_id, anger)

    def _escalate(self, s: Session, text: str, intent: str, conf: float, anger: float | None,
                  reason: str) -> Reply:
        s.escalated = True
        article, _ = self._article(text, intent)
        hint = f" Meanwhile, this may help: {article.title}." if article else ""
        r = self._reply(s, f"{OPENING[reason]} {OFFER}{hint}", "escalate", intent, conf,
                        article.id if article else None, anger)
        return Reply(r.text, r.action, r.intent, r.confidence, r.slots, r.article_id, r.anger, reason)

    def _answer(self, s: Session, text: str, intent: str, conf: float, anger: float | None,
                acknowledged: list[str]) -> Reply:
        ack = " ".join(f"Thank you, I have your {SLOT_NAMES[n]} {getattr(s.slots, n)}." for n in acknowledged)
        query = text if not acknowledged else (self._last_customer_question(s) or text)
        article, _ = self._article(query, intent)
        if article is None:
            if s.unsure >= 1:
                return self._escalate(s, text, intent, conf, anger, "unsure")
            return self._reply(s, f"{ack} {UNSURE} {OFFER}".strip(), "unsure", intent, conf, None, anger)
        body = f"{ack} {article.text}".strip()
        need = NEEDS.get(intent)
        if need and not getattr(s.slots, need) and need not in s.asked:
            s.asked.add(need)
            reply = self._reply(s, f"{body} {ASK[need]}", "ask_slot", intent, conf, article.id, anger)
            s.pending = need
            return reply
        return self._reply(s, body, "answer", intent, conf, article.id, anger)

    @staticmethod
    def _last_customer_question(s: Session) -> str | None:
        """The customer's turn before the current one (what a slot-only answer refers to)."""
        said = [t for who, t in s.turns if who == "customer"]
        return said[-2] if len(said) >= 2 else None
