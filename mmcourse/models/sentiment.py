"""Models of the sentiment project (chapter 09): a text GRU, an emoji-picture CNN, and the
post classifier that fuses a text embedding with a picture embedding (or the lack of one).

    text  [B, 384] MiniLM       --MLP-->  t [B, H] -.
                                                    +-- fusion (concat | gmu | late) --> [B, 3]
    image [B, D] CNN's output   --MLP-->  i [B, H] -'
                 has_image [B] False: i = a learned "no picture" embedding (late: no image vote)

(Chapter 09 feeds the picture as the CNN's probabilities over the 756 emojis, D = 756.)

A missing picture is handled by the model, not faked with zeros: ``PostClassifier`` replaces
the picture's embedding by a learned ``no_picture`` vector (concat, GMU), or leaves the picture's
expert out of the product (late fusion: a missing expert is uniform, the text decides alone).
Modality dropout (training only) hides the picture of a share of the posts that have one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.fusion import ConcatFusion, GatedMultimodalUnit, LateFusion
from mmcourse.models.sequence import SequenceClassifier

FUSIONS = ("text", "image", "concat", "gmu", "late")


class TextGRU(nn.Module):
    """Word ids ``{"ids": [B, T], "lengths": [B]}`` -> logits ``[B, K]``: embedding, packed
    bidirectional GRU (:class:`SequenceClassifier`), final states -> linear head."""

    def __init__(self, vocab_size: int, num_classes: int = 3, emb: int = 64, hidden: int = 64,
                 dropout: float = 0.3, pad_id: int = 0):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb, padding_idx=pad_id)
        self.drop = nn.Dropout(dropout)
        self.rnn = SequenceClassifier(emb, num_classes, hidden, cell="gru", bidirectional=True, dropout=dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.drop(self.embed(batch["ids"]))  # [B, T, emb]
        return self.rnn(x, batch["lengths"])  # [B, K]


class EmojiCNN(nn.Module):
    """A small CNN on post pictures ``[B, 3, 64, 64]`` (uint8 or float in [0, 1]) -> logits ``[B, K]``.

    Four stride-2 conv blocks (64 -> 32 -> 16 -> 8 -> 4 pixels), global average pooling;
    ``features(x)`` is the pooled ``[B, width * 4]`` embedding before the linear head.
    """

    def __init__(self, num_classes: int = 3, width: int = 16):
        super().__init__()
        chans = [3, width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:], strict=True)):
            layers += [nn.Conv2d(a, b, 5 if i == 0 else 3, stride=2, padding=2 if i == 0 else 1, bias=False),
                       nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out_dim = chans[-1]
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.out_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"EmojiCNN expects RGB pictures [B, 3, H, W], got {tuple(x.shape)}")
        x = x.float() / 255 if x.dtype == torch.uint8 else x
        return self.body((x - 0.5) / 0.25).mean((2, 3))  # [B, out_dim]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # [B, K]


class PostClassifier(nn.Module):
    """``{"text": [B, Dt], "image": [B, Di], "has_image": [B] bool} -> logits [B, K]``.

    ``fusion``: ``"text"`` (the picture is ignored), ``"image"`` (the text is ignored), ``"concat"``,
    ``"gmu"`` (:class:`GatedMultimodalUnit`) or ``"late"`` (:class:`LateFusion`, product of experts).
    ``picture_dropout``: during training, the share of pictures hidden (modality dropout).
    """

    def __init__(self, fusion: str, text_dim: int = 384, image_dim: int = 96, hidden: int = 128,
                 num_classes: int = 3, picture_dropout: float = 0.0, dropout: float = 0.2):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if not 0.0 <= picture_dropout < 1.0:
            raise ValueError(f"picture_dropout must be in [0, 1), got {picture_dropout}")
        self.kind, self.picture_dropout = fusion, picture_dropout
        self.text = nn.Sequential(nn.Linear(text_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.image = nn.Sequential(nn.Linear(image_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.no_picture = nn.Parameter(torch.zeros(hidden))  # learned embedding of "no picture"
        dims = {"text": hidden, "image": hidden}
        if fusion == "concat":
            self.fusion = ConcatFusion(dims)
            self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, num_classes))
        elif fusion == "gmu":
            self.fusion = GatedMultimodalUnit(dims, hidden)
            self.head = nn.Linear(hidden, num_classes)
        elif fusion == "late":
            self.fusion = LateFusion(dims, num_classes, combine="poe")
        else:  # one modality alone
            self.head = nn.Linear(hidden, num_classes)

    def _has(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        has = batch["has_image"].bool()  # [B]
        if self.training and self.picture_dropout > 0:
            has = has & (torch.rand(has.shape, device=has.device) >= self.picture_dropout)
        return has

    def contributions(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Late fusion's two experts: ``{"text": log p_text [B, K], "image": log p_image [B, K]}``
        (the image's is 0 where there is no picture), whose sum is the fused logits."""
        if self.kind != "late":
            raise ValueError(f"contributions() needs fusion='late', this model is {self.kind!r}")
        has = self._has(batch)
        logits = self.fusion.unimodal_logits({"text": self.text(batch["text"]), "image": self.image(batch["image"])})
        image = torch.where(has[:, None], F.log_softmax(logits["image"], -1), torch.zeros_like(logits["image"]))
        return {"text": F.log_softmax(logits["text"], -1), "image": image}  # each [B, K]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.kind == "late":
            c = self.contributions(batch)
            return c["text"] + c["image"]  # [B, K]: product of experts (cross-entropy renormalises)
        if self.kind == "text":
            return self.head(self.text(batch["text"]))
        has = self._has(batch)
        i = torch.where(has[:, None], self.image(batch["image"]), self.no_picture)  # [B, H]
        if self.kind == "image":
            return self.head(i)
        return self.head(self.fusion({"text": self.text(batch["text"]), "image": i}))  # [B, K]
