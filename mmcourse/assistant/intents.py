"""Intent classifiers on frozen MiniLM sentence embeddings (chapter 13).

=======================  ==============================================================
``ZeroShotIntent``       no labels: cosine of a message to descriptions of each intent
                         (:data:`DESCRIPTIONS`, written for the course); the intent whose best
                         description is closest wins
``FewShotIntent``        scikit-learn's logistic regression on the embeddings of labelled tweets
``embed(texts, name)``   MiniLM embeddings ``[N, 384]``, cached on disk
``evaluate``             accuracy and macro-F1 (``mmcourse.metrics``)
``fit_on_labels()``      the few-shot model fitted on the train labels
``classifier(model)``    ``text -> (intent, confidence)`` for the dialogue manager
=======================  ==============================================================

Both classifiers take embeddings ``[N, 384]`` (unit length), so the encoder runs once per text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from mmcourse.assistant.knowledge import clean_query
from mmcourse.data.intents import INTENTS
from mmcourse.metrics import accuracy, precision_recall_f1

# Several phrasings per intent: a customer's words, not a definition (MiniLM matches sentences to
# sentences). Written from LABELLING.md before any model was run on the test labels.
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "baggage": (
        "my checked bag is lost and did not arrive",
        "my luggage was delayed, where is my suitcase",
        "my bag was damaged or something was stolen from it",
        "how much are the bag fees and the carry-on allowance",
        "I left an item on the plane",
    ),
    "delay_cancellation": (
        "my flight is delayed",
        "my flight was cancelled",
        "we are stuck on the tarmac waiting for a gate",
        "I missed my connection because my flight was late",
        "is my flight on time, any update on the delay",
        "stranded at the airport overnight, need a hotel after the cancellation",
    ),
    "booking_change_refund": (
        "I want to change my booking to another date",
        "how do I get a refund for my ticket",
        "I need help with my reservation and seat assignment",
        "question about fares, miles, upgrades and my frequent flyer status",
        "the website will not let me check in or book a flight",
    ),
    "staff_service_complaint": (
        "your staff was rude and unhelpful",
        "I have been on hold for hours and nobody answers the phone",
        "terrible customer service, worst airline ever",
        "the wifi and entertainment did not work and the plane was dirty",
    ),
    "thanks_praise": (
        "thank you so much for your help",
        "great flight, amazing crew, I love this airline",
        "the flight attendant was wonderful, thanks",
    ),
    "other": (
        "just sharing a photo of a plane",
        "news about the airline",
        "can you follow me so I can send a direct message",
        "a question about airports, pets or special assistance",
    ),
}


def embed(texts: Sequence[str], name: str) -> torch.Tensor:
    """MiniLM embeddings of ``texts`` (``@user`` and ``http`` removed) ``[N, 384]``, cached under
    ``$MMCOURSE_CACHE/pretrained/`` as input set ``name``."""
    from mmcourse.pretrained import text_features

    return text_features([clean_query(t) or t for t in texts], name)


def _check(z: torch.Tensor) -> torch.Tensor:
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"expected embeddings [N, D], got shape {tuple(z.shape)}; embed texts with embed()")
    return z.float()


class ZeroShotIntent:
    """Scores ``[N, 6]``: for each intent, the largest cosine between a message and its descriptions.

    ``descriptions`` maps every intent of :data:`INTENTS` to phrasings; ``encoder`` embeds them
    (list of str -> ``[M, D]`` unit vectors; MiniLM by default).
    """

    def __init__(self, descriptions: dict[str, Sequence[str]] | None = None, encoder=None):
        d = DESCRIPTIONS if descriptions is None else descriptions
        if set(d) != set(INTENTS) or not all(d[i] for i in INTENTS):
            raise ValueError(f"descriptions must give at least one phrasing for each of {INTENTS}")
        texts = [t for i in INTENTS for t in d[i]]
        self.owner = torch.tensor([k for k, i in enumerate(INTENTS) for _ in d[i]])  # [M]
        if encoder is None:
            self.vectors = embed(texts, "intent-descriptions")  # [M, 384]
        else:
            self.vectors = encoder(texts)

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        sim = _check(z) @ self.vectors.T  # [N, M]
        out = torch.full((len(z), len(INTENTS)), -1.0)
        for k in range(len(INTENTS)):
            out[:, k] = sim[:, self.owner == k].max(1).values
        return out  # [N, 6]

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        return self.scores(z).argmax(1)  # [N]


class FewShotIntent:
    """Multinomial logistic regression (scikit-learn) on embeddings ``[N, D]`` -> intent ``[N]``.

    ``C`` is the inverse L2 strength; ``balanced`` weights classes by inverse frequency.
    """

    def __init__(self, C: float = 4.0, balanced: bool = True, seed: int = 0):
        from sklearn.linear_model import LogisticRegression

        self.model = LogisticRegression(C=C, class_weight="balanced" if balanced else None,
                                        max_iter=2000, random_state=seed)

    def fit(self, z: torch.Tensor, y: Sequence[int] | torch.Tensor) -> FewShotIntent:
        y = np.asarray(y)
        if len(y) != len(z):
            raise ValueError(f"{len(z)} embeddings but {len(y)} labels")
        missing = sorted(set(range(len(INTENTS))) - set(y.tolist()))
        if missing:
            raise ValueError(f"the training labels lack intents {[INTENTS[i] for i in missing]}: "
                             "every intent needs examples")
        self.model.fit(_check(z).numpy(), y)
        return self

    def proba(self, z: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.model.predict_proba(_check(z).numpy())).float()  # [N, 6]

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        return self.proba(z).argmax(1)  # [N]


def fit_on_labels(C: float = 4.0, path=None) -> FewShotIntent:
    """A :class:`FewShotIntent` fitted on the train split of the hand-labelled tweets
    (``mmcourse/assistant/intent_labels.csv``; the test split is never used here)."""
    from mmcourse.data.intents import LABELS_CSV, intent_data

    tr = intent_data("train", path or LABELS_CSV)
    return FewShotIntent(C).fit(embed(tr.texts, "intents-train"), tr.labels())


def classifier(model: FewShotIntent | ZeroShotIntent, encoder=None) -> Callable[[str], tuple[str, float]]:
    """``classify(text) -> (intent, confidence)`` for the dialogue manager: the few-shot model's
    probability, or the zero-shot model's best cosine. ``encoder`` embeds one message (MiniLM by default)."""
    def encode(texts: list[str]) -> torch.Tensor:
        if encoder is not None:
            return encoder(texts)
        from mmcourse.pretrained import text_encoder

        return text_encoder()(texts)

    def classify(text: str) -> tuple[str, float]:
        z = encode([clean_query(text) or text])  # [1, 384]
        p = model.proba(z)[0] if isinstance(model, FewShotIntent) else model.scores(z)[0]  # [6]
        k = int(p.argmax())
        return INTENTS[k], float(p[k])

    return classify


def evaluate(y_true: Sequence[int] | torch.Tensor, y_pred: Sequence[int] | torch.Tensor) -> dict[str, float]:
    """``{"accuracy", "macro_f1"}``; macro-F1 averages over all six intents (as scikit-learn's
    ``f1_score(average="macro", labels=range(6))``)."""
    t, p = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    f1 = precision_recall_f1(t, p, average=None, num_classes=len(INTENTS))[2]  # [6]
    return {"accuracy": accuracy(t, p), "macro_f1": float(f1.mean())}
