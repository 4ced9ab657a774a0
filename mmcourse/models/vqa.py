"""Visual question answering: an image CNN giving region features, a question encoder, a fusion, a head.

    image [B, 3, S, S] --RegionCNN--> regions [B, R, d] --max over R--> v [B, d]
    question ids [B, T] --BoW or GRU--> q [B, d]
    fusion: concat [v; q] | product v * q | stacked attention (q attends over the regions, 1-2 hops)
    head: MLP -> answer logits [B, K]

Batches (:class:`QuestionBatches`) hold each image once and index it from every question about it,
``{"images": [M, 3, S, S], "index": [B], "question": [B, T], "lengths": [B]}``, so a batch of B
questions about M << B images runs the CNN M times. (That is why :class:`mmcourse.fusion.MultimodalModel`,
which encodes every modality per example, is not used here; its :class:`ConcatFusion` is.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.config import offset_seed
from mmcourse.fusion import ConcatFusion
from mmcourse.text import Vocab, pad_batch, tokenize

FUSIONS = ("question only", "image only", "concat", "product", "attention")


def encode_questions(vocab: Vocab, questions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Tokenise and encode: ``(ids [Q, T] right-padded, lengths [Q], unknown words)``.

    Words outside ``vocab`` become ``<unk>`` (the vocabulary must have one) and are returned, in
    order of first appearance, so that the caller can say which words the model could not read."""
    if vocab.unk_id is None or vocab.pad_id is None:
        raise ValueError("encode_questions needs a vocabulary with pad and unk tokens: "
                         "Vocab.build(..., pad='<pad>', unk='<unk>')")
    if isinstance(questions, str):
        raise ValueError("questions must be a list of strings, e.g. [question], not one string")
    tokens = [tokenize(q) for q in questions]
    if any(not t for t in tokens):
        raise ValueError("a question has no words: " + repr(next(q for q, t in zip(questions, tokens, strict=True) if not t)))
    unknown = list(dict.fromkeys(w for t in tokens for w in t if w not in vocab))
    ids, lengths = pad_batch([vocab.encode(t) for t in tokens], pad_id=vocab.pad_id)  # [Q, T], [Q]
    return ids, lengths, unknown


class QuestionBatches:
    """Batches of questions grouped by image: each batch takes ``images_per_batch`` images and all
    their questions. Yields ``(x, y)``: ``x = {"images": [M, 3, S, S], "index": [B] (which of the M),
    "question": [B, ...], "lengths": [B] (if given)}``, ``y = answer [B]``. ``shuffle`` draws a new image
    order every pass (generator seeded with ``seed + MMCOURSE_SEED``)."""

    def __init__(self, images: torch.Tensor, image_index: torch.Tensor, question: torch.Tensor,
                 answer: torch.Tensor, images_per_batch: int = 16, lengths: torch.Tensor | None = None,
                 shuffle: bool = False, seed: int = 0):
        n = len(image_index)
        if not (len(question) == len(answer) == n and (lengths is None or len(lengths) == n)):
            raise ValueError("image_index, question, answer (and lengths) need one row per question")
        self.images, self.question, self.answer, self.lengths = images, question, answer, lengths
        self.shuffle, self.per_batch = shuffle, images_per_batch
        self.g = torch.Generator().manual_seed(offset_seed(seed))
        order = torch.argsort(image_index, stable=True)
        counts = torch.bincount(image_index, minlength=len(images))
        self.groups = list(torch.split(order, counts.tolist()))  # questions of each image
        self.image_ids = [i for i, c in enumerate(counts.tolist()) if c > 0]

    def __len__(self) -> int:
        return -(-len(self.image_ids) // self.per_batch)

    def rows(self) -> torch.Tensor:
        """The question rows ``[Q]`` in the order an unshuffled pass yields them (to align predictions)."""
        if self.shuffle:
            raise ValueError("rows() is the order of an unshuffled pass: use shuffle=False")
        return torch.cat([self.groups[i] for i in self.image_ids])

    def __iter__(self) -> Iterator[tuple[dict, torch.Tensor]]:
        ids = torch.tensor(self.image_ids)
        if self.shuffle:
            ids = ids[torch.randperm(len(ids), generator=self.g)]
        for chunk in ids.split(self.per_batch):
            q = torch.cat([self.groups[i] for i in chunk.tolist()])  # [B] question rows
            index = torch.cat([torch.full((len(self.groups[i]),), k) for k, i in enumerate(chunk.tolist())])
            if self.shuffle:
                p = torch.randperm(len(q), generator=self.g)
                q, index = q[p], index[p]
            x = {"images": self.images[chunk], "index": index, "question": self.question[q]}
            if self.lengths is not None:
                x["lengths"] = self.lengths[q]
            yield x, self.answer[q]


def check_images(images: torch.Tensor, size: int, name: str = "images") -> None:
    """Raise a ValueError unless ``images`` is ``[B, 3, size, size]``."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
        raise ValueError(f"{name} must be [B, 3, {size}, {size}] (RGB, {size}x{size} pixels), got "
                         f"{tuple(images.shape)}; resize with torch.nn.functional.interpolate(x, size={size})")


def per_question_images(x: dict, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [M, 3, S, S], index [B])`` from a batch dict with ``images`` + ``index``, or with
    ``image`` ``[B, 3, S, S]`` (one image per question: ``index = arange(B)``)."""
    if not isinstance(x, dict) or "question" not in x or not ({"images", "image"} & set(x)):
        raise ValueError("expected a dict with 'question' and 'images' + 'index' (QuestionBatches) or 'image' "
                         f"[B, 3, {size}, {size}], got {sorted(x) if isinstance(x, dict) else type(x).__name__}")
    if "image" in x:
        check_images(x["image"], size, "x['image']")
        return x["image"], torch.arange(len(x["image"]), device=x["image"].device)
    check_images(x["images"], size, "x['images']")
    return x["images"], x["index"]


def conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class RegionCNN(nn.Module):
    """``[B, 3, 64, 64] -> [B, R = 64, dim]``: three stride-2 convolutions (64 -> 8 pixels) and one
    more, so each of the 8 x 8 regions sees a 31-pixel window."""

    def __init__(self, dim: int = 64, size: int = 64):
        super().__init__()
        self.size, self.grid = size, size // 8
        self.net = nn.Sequential(conv_block(3, 16, 2), conv_block(16, 32, 2), conv_block(32, dim, 2),
                                 conv_block(dim, dim, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, self.size)
        return self.net(images).flatten(2).transpose(1, 2)  # [B, G*G, dim]


class BagOfWords(nn.Module):
    """``ids [B, T], lengths [B] -> [B, dim]``: mean of the word embeddings (order ignored), then a layer."""

    def __init__(self, vocab_size: int, dim: int = 64, pad_id: int = 0):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids).sum(1) / lengths.clamp(min=1).unsqueeze(1).to(torch.float32)  # [B, dim]
        return self.out(e)


class GRUEncoder(nn.Module):
    """``ids [B, T], lengths [B] -> [B, dim]``: the GRU's hidden state after each question's last word."""

    def __init__(self, vocab_size: int, dim: int = 64, pad_id: int = 0):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.gru = nn.GRU(dim, dim, batch_first=True)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.emb(ids))  # [B, T, dim]; right padding comes after the last word
        last = (lengths - 1).clamp(min=0).to(ids.device)
        return out[torch.arange(len(ids), device=ids.device), last]  # [B, dim]


class StackedAttention(nn.Module):
    """Question-guided attention over image regions (Yang et al., 2016), ``hops`` times:

        h = tanh(W_v v + W_u u)  [B, R, k];  p = softmax_R(w . h)  [B, R];  u <- u + sum_r p_r v_r

    starting from ``u = q``. ``forward(regions [B, R, d], q [B, d]) -> (u [B, d], p [B, hops, R])``;
    with ``index`` ``[B]``, ``regions`` are per image ``[M, R, d]`` and question ``b`` reads image
    ``index[b]`` (``W_v v`` is then computed once per image)."""

    def __init__(self, dim: int = 64, hops: int = 2, att_dim: int = 64):
        super().__init__()
        if hops < 1:
            raise ValueError(f"hops must be >= 1, got {hops}")
        self.v = nn.ModuleList(nn.Linear(dim, att_dim) for _ in range(hops))
        self.u = nn.ModuleList(nn.Linear(dim, att_dim, bias=False) for _ in range(hops))
        self.w = nn.ModuleList(nn.Linear(att_dim, 1) for _ in range(hops))

    def forward(self, regions: torch.Tensor, q: torch.Tensor, index: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if index is None:
            index = torch.arange(len(q), device=q.device)
        if regions.ndim != 3 or q.ndim != 2 or len(index) != len(q):
            raise ValueError(f"expected regions [M, R, d], q [B, d], index [B]; got {tuple(regions.shape)}, "
                             f"{tuple(q.shape)}, {tuple(index.shape)}")
        u, maps = q, []
        for wv, wu, w in zip(self.v, self.u, self.w, strict=True):
            h = torch.tanh(wv(regions)[index] + wu(u).unsqueeze(1))  # [B, R, k]
            p = F.softmax(w(h).squeeze(-1), dim=-1)  # [B, R]
            u = u + torch.einsum("br,brd->bd", p, regions[index])  # [B, d]
            maps.append(p)
        return u, torch.stack(maps, 1)  # [B, d], [B, hops, R]


class VQANet(nn.Module):
    """``forward(x) -> [B, K]`` answer logits; ``x`` as :class:`QuestionBatches` makes it (or with
    ``image`` ``[B, 3, 64, 64]``). ``fusion``: one of ``FUSIONS``; ``question``: ``"bow"`` or ``"gru"``;
    ``hops``: attention hops. ``forward(x, return_attention=True)`` also returns ``[B, hops, R]``."""

    def __init__(self, vocab_size: int, n_answers: int, fusion: str = "attention", question: str = "gru",
                 dim: int = 64, hops: int = 1, pad_id: int = 0, image_size: int = 64):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if question not in ("bow", "gru"):
            raise ValueError(f"question must be 'bow' or 'gru', got {question!r}")
        self.fusion_name, self.image_size = fusion, image_size
        self.image = RegionCNN(dim, image_size) if fusion != "question only" else None
        q_cls = GRUEncoder if question == "gru" else BagOfWords
        self.question = q_cls(vocab_size, dim, pad_id) if fusion != "image only" else None
        self.concat = ConcatFusion({"image": dim, "question": dim}) if fusion == "concat" else None
        self.attention = StackedAttention(dim, hops) if fusion == "attention" else None
        d_in = 2 * dim if fusion == "concat" else dim
        self.head = nn.Sequential(nn.Linear(d_in, 128), nn.ReLU(), nn.Linear(128, n_answers))

    def forward(self, x: dict, return_attention: bool = False):
        att = None
        q = self.question(x["question"], x["lengths"]) if self.question is not None else None  # [B, d]
        if self.image is None:
            h = q
        else:
            images, index = per_question_images(x, self.image_size)
            regions = self.image(images)  # [M, R, d]: once per image
            v = regions.amax(1)[index]  # [B, d]: max over regions (a small shape is not averaged away)
            if self.fusion_name == "image only":
                h = v
            elif self.fusion_name == "concat":
                h = self.concat({"image": v, "question": q})  # [B, 2d]
            elif self.fusion_name == "product":
                h = v * q
            else:
                h, att = self.attention(regions, q, index)  # [B, d], [B, hops, R]
        logits = self.head(h)  # [B, K]
        return (logits, att) if return_attention else logits
