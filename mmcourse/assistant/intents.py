"""Intent classifiers on frozen MiniLM sentence embeddings (chapter 13).

=======================  ==============================================================
``ZeroShotIntent``       no labels: cosine of a message to descriptions of each intent
                         (:data:`DESCRIPTIONS`, written for the course); the intent whose best
                         description is closest wins
``FewShotIntent``        scikit-learn's logistic regression on the embeddings of labelled tweets
``FineTunedIntent``      MiniLM fine-tuned end to end on the labelled tweets (chapter 08's recipe)
``embed(texts, name)``   MiniLM embeddings ``[N, 384]``, cached on disk
``evaluate``             accuracy and macro-F1 (``mmcourse.metrics``)
``fit_on_labels()``      the few-shot model fitted on the train labels
``classifier(model)``    ``text -> (intent, confidence)`` for the dialogue manager
=======================  ==============================================================

The first two take embeddings ``[N, 384]`` (unit length), so the encoder runs once per text; the
fine-tuned one takes texts (its encoder is its own).
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


class FineTunedIntent:
    """MiniLM + a linear head over the six intents, fine-tuned end to end (chapter 08's full recipe:
    head at ``lr``, MiniLM at ``backbone_lr``, warm-up then linear decay, AdamW).

    ``val_share`` of the labelled texts (stratified, fixed) are held out to keep the epoch with the lowest
    validation loss; the model trains on the rest. The weights are cached on disk by the texts, labels and
    settings, so a second call loads them.
    """

    def __init__(self, texts: Sequence[str], labels: Sequence[int], epochs: int = 8, lr: float = 1e-3,
                 backbone_lr: float = 1e-4, val_share: float = 0.2, max_length: int = 64, batch_size: int = 16,
                 seed: int = 0):
        import hashlib
        import json

        from sklearn.model_selection import train_test_split

        from mmcourse.config import cache_dir, load_or_compute, offset_seed, seed_everything
        from mmcourse.finetune import sentiment as st

        y = np.asarray(labels)
        if len(y) != len(texts) or sorted(set(y.tolist())) != list(range(len(INTENTS))):
            raise ValueError(f"need one label per text ({len(texts)} texts, {len(y)} labels) and every intent "
                             f"of {INTENTS} among them")
        if epochs < 1 or not 0.05 <= val_share <= 0.5:
            raise ValueError(f"epochs >= 1 and val_share in [0.05, 0.5] are needed, got {epochs}, {val_share}")
        self.st, self.max_length = st, max_length
        cfg = st.SentimentConfig(epochs=epochs, lr=lr, backbone_lr=backbone_lr, max_length=max_length,
                                 batch_size=batch_size, seed=seed)  # the training settings (not its data sizes)
        clean = [clean_query(t) or t for t in texts]
        tr, va = train_test_split(np.arange(len(y)), test_size=val_share, stratify=y, random_state=0)
        settings = {"epochs": epochs, "lr": lr, "backbone_lr": backbone_lr, "val_share": val_share,
                    "max_length": max_length, "batch_size": batch_size, "seed": offset_seed(seed), "v": 1}
        key = hashlib.sha256(json.dumps([clean, y.tolist(), settings]).encode()).hexdigest()[:12]
        self.tokenizer, encoder = st.fresh_minilm()
        seed_everything(seed)
        self.model = st.SentimentModel(encoder, num_classes=len(INTENTS))

        def train() -> dict:
            batches = lambda idx, shuffle: st.LengthBatches(  # noqa: E731
                self.tokenizer, [clean[i] for i in idx], torch.as_tensor(y[idx]), max_length,
                batch_size if shuffle else 128, shuffle, seed)
            hist = st.train_classifier("full", self.model, batches(tr, True), batches(va, False), cfg)
            return {"state": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                    "best_epoch": hist.best_epoch, "val_loss": [r["val_loss"] for r in hist.rows],
                    "seconds": hist.seconds}

        saved = load_or_compute(cache_dir() / "assistant" / f"intent-minilm-{key}.pt", train)
        self.model.load_state_dict(saved["state"])
        self.model.eval()
        self.history = {k: v for k, v in saved.items() if k != "state"}

    def proba_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """P(intent) ``[N, 6]`` of raw messages."""
        clean = [clean_query(t) or t for t in texts]
        b = self.st.LengthBatches(self.tokenizer, clean, torch.zeros(len(clean), dtype=torch.long),
                                  self.max_length, 128, False)
        return self.st.predict_probs(self.model, b)  # [N, 6]

    def predict_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.proba_texts(texts).argmax(1)  # [N]


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
