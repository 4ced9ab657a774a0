"""The help desk's knowledge base: short articles written for the course, retrieved with MiniLM.

``knowledge.json`` holds the articles (``id``, ``intent``, ``title``, ``text``: a generic airline,
"our airline"; no real airline's policy). :class:`KnowledgeBase` embeds each article's title and
text once (cached on disk by :func:`mmcourse.pretrained.text_features`), embeds a query, and ranks
the articles by cosine similarity. Below ``threshold`` the answer is "unsure": the assistant says
so and offers a human.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mmcourse.data.intents import INTENTS
from mmcourse.text import clean_tweet

KNOWLEDGE_JSON = Path(__file__).resolve().parent / "knowledge.json"
THRESHOLD = 0.30  # cosine below which retrieval is "unsure" (tests/test_assistant_knowledge.py checks it)
Encoder = Callable[[Sequence[str]], torch.Tensor]  # list of N texts -> [N, D], unit length


@dataclass(frozen=True)
class Article:
    id: str
    intent: str
    title: str
    text: str


def load_articles(path: Path = KNOWLEDGE_JSON) -> list[Article]:
    """The articles of ``path``, checked: the four fields, a known intent, unique ids."""
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"knowledge base {path} is missing; it ships with mmcourse: reinstall it "
                                "(pip install -e .) or restore the file from git") from err
    arts, seen = [], set()
    for i, r in enumerate(rows):
        if set(r) != {"id", "intent", "title", "text"} or r["intent"] not in INTENTS or r["id"] in seen:
            raise ValueError(f"{path}, article {i}: needs exactly id, intent, title, text, an intent in "
                             f"{INTENTS} and an unused id; got {r}")
        seen.add(r["id"])
        arts.append(Article(**r))
    return arts


def clean_query(text: str) -> str:
    """A message as the encoder should see it: cleaned (:func:`clean_tweet`), without ``@user``
    handles and ``http`` placeholders, which carry nothing about the question."""
    t = re.sub(r"@user\b|\bhttp\b", " ", clean_tweet(text))
    return " ".join(t.split())


def _minilm(texts: Sequence[str]) -> torch.Tensor:
    from mmcourse.pretrained import text_encoder

    return text_encoder()(list(texts))


@dataclass(frozen=True)
class Answer:
    """The result of a search: ``hits`` are ``(article, cosine)`` best first; ``unsure`` when the best
    cosine is below the threshold (then the assistant offers a human instead of ``article``)."""

    hits: list[tuple[Article, float]]
    unsure: bool

    @property
    def article(self) -> Article | None:
        return None if self.unsure or not self.hits else self.hits[0][0]

    @property
    def score(self) -> float:
        return self.hits[0][1] if self.hits else 0.0


class KnowledgeBase:
    """Articles embedded once; ``search(query, k)`` ranks them by cosine to the query.

    ``encoder`` maps texts to unit vectors ``[N, D]`` (MiniLM by default: the article embeddings are
    cached under ``$MMCOURSE_CACHE/pretrained/``; queries are encoded on the fly).
    """

    def __init__(self, articles: list[Article] | None = None, threshold: float = THRESHOLD,
                 encoder: Encoder | None = None):
        self.articles = load_articles() if articles is None else articles
        if not self.articles:
            raise ValueError("KnowledgeBase needs at least one article")
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold is a cosine in [0, 1), got {threshold}")
        self.threshold, self.encoder = threshold, encoder or _minilm
        self._memo: dict[str, torch.Tensor] = {}
        docs = [f"{a.title}. {a.text}" for a in self.articles]
        if encoder is None:
            from mmcourse.pretrained import text_features

            self.vectors = text_features(docs, "assistant-knowledge")  # [A, 384]
        else:
            self.vectors = self.encoder(docs)  # [A, D]

    def scores(self, queries: Sequence[str]) -> torch.Tensor:
        """Cosine of each query to each article ``[Q, A]``."""
        if isinstance(queries, str):
            raise ValueError("scores expects a list of queries; use search(query) for one")
        q = torch.stack([self._encode_one(clean_query(t) or t) for t in queries]) if queries else \
            torch.zeros(0, self.vectors.shape[1])  # [Q, D]
        return q @ self.vectors.T  # [Q, A]

    def _encode_one(self, text: str) -> torch.Tensor:
        """One query's vector ``[D]``; the last 64 are memoised (a dialogue turn searches twice)."""
        if text not in self._memo:
            self._memo[text] = self.encoder([text])[0]
            while len(self._memo) > 64:
                self._memo.pop(next(iter(self._memo)))
        return self._memo[text]

    def search(self, query: str, k: int = 3, intent: str | None = None) -> Answer:
        """The ``k`` best articles for ``query`` (only those of ``intent`` when given)."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query must be a non-empty string, got {query!r}")
        if intent is not None and intent not in INTENTS:
            raise ValueError(f"intent must be one of {INTENTS} or None, got {intent!r}")
        s = self.scores([query])[0]  # [A]
        idx = [i for i in s.argsort(descending=True).tolist()
               if intent is None or self.articles[i].intent == intent][:k]
        hits = [(self.articles[i], float(s[i])) for i in idx]
        return Answer(hits, unsure=not hits or hits[0][1] < self.threshold)

    def get(self, article_id: str) -> Article:
        for a in self.articles:
            if a.id == article_id:
                return a
        raise KeyError(f"no article {article_id!r}; ids: {[a.id for a in self.articles]}")
