"""easy-VQA as a task (chapter 10): a validation set carved from train by image, question types,
negated questions, the question vocabulary and batches grouped by image.

    task = easy_vqa_task(n_val_images=500)      # {"train", "val", "test"} splits + vocab + answers
    task["train"]["type"]                       # [Q] index into QUESTION_TYPES (from the answer)
    batches(task, "train", shuffle=True)        # QuestionBatches over that split

The validation images (and so all their questions) come out of the official train split, never the
test split, so the test set is touched once per model.
"""

from __future__ import annotations

import functools

import torch

from mmcourse.data.vqa import answers, easy_vqa_split
from mmcourse.models.vqa import QuestionBatches, encode_questions
from mmcourse.text import Vocab, tokenize

QUESTION_TYPES = ("yes/no", "colour", "shape")
SHAPE_ANSWERS = ("circle", "rectangle", "triangle")


def answer_types() -> torch.Tensor:
    """``[13]`` index into ``QUESTION_TYPES`` for each answer of :func:`answers`."""
    return torch.tensor([0 if a in ("yes", "no") else 2 if a in SHAPE_ANSWERS else 1 for a in answers()])


def is_negated(question: str) -> bool:
    """True for questions with a negation ("does the image not contain...", "is no red shape present?")."""
    return bool({"not", "no"} & set(tokenize(question)))


def _split(d: dict, keep: torch.Tensor, vocab: Vocab) -> dict:
    questions = [q for q, k in zip(d["questions"], keep.tolist(), strict=True) if k]
    ids, lengths, unknown = encode_questions(vocab, questions)
    ans = d["answer"][keep]
    return {"images": d["images"], "image_index": d["image_index"][keep], "questions": questions,
            "ids": ids, "lengths": lengths, "unknown": unknown, "answer": ans, "type": answer_types()[ans],
            "negated": torch.tensor([is_negated(q) for q in questions])}


@functools.cache
def easy_vqa_task(n_val_images: int = 500, seed: int = 0) -> dict:
    """The official train split minus ``n_val_images`` random images (seed ``seed``, fixed) -> train and
    val; the official test split -> test. Each split: ``images`` (all images of its official split),
    ``image_index`` ``[Q]``, ``questions``, ``ids`` ``[Q, T]``, ``lengths`` ``[Q]``, ``answer`` ``[Q]``,
    ``type`` ``[Q]``, ``negated`` ``[Q]`` bool, ``unknown`` (words outside the vocabulary, built on train).
    """
    train, test = easy_vqa_split("train"), easy_vqa_split("test")
    n_img = len(train["images"])
    if not 0 < n_val_images < n_img:
        raise ValueError(f"n_val_images must be between 1 and {n_img - 1}, got {n_val_images}")
    val_images = torch.randperm(n_img, generator=torch.Generator().manual_seed(seed))[:n_val_images]
    is_val = torch.isin(train["image_index"], val_images)
    tr_questions = [q for q, v in zip(train["questions"], is_val.tolist(), strict=True) if not v]
    vocab = Vocab.build([tokenize(q) for q in tr_questions], pad="<pad>", unk="<unk>", order="sorted")
    return {"train": _split(train, ~is_val, vocab), "val": _split(train, is_val, vocab),
            "test": _split(test, torch.ones(len(test["answer"]), dtype=torch.bool), vocab),
            "vocab": vocab, "answers": answers()}


def predict_split(model: torch.nn.Module, task: dict, split: str = "test") -> dict:
    """The model's answers on a split, aligned with its rows: ``{"pred", "answer", "type", "negated",
    "probs"}``, each ``[Q]`` (``probs`` ``[Q, 13]``), in the split's own question order."""
    from mmcourse.train import predict

    b = batches(task, split)
    out, _ = predict(model, b, device=torch.device("cpu"))
    back = torch.empty_like(b.rows())
    back[b.rows()] = torch.arange(len(back))  # position of each question in the pass
    probs = out.softmax(-1)[back]
    d = task[split]
    return {"pred": probs.argmax(1), "answer": d["answer"], "type": d["type"], "negated": d["negated"], "probs": probs}


def batches(task: dict, split: str, shuffle: bool = False, images_per_batch: int = 16, seed: int = 0,
            subset: int | None = None) -> QuestionBatches:
    """:class:`QuestionBatches` over one split (``subset``: only the questions of its first ``subset`` images)."""
    d = task[split]
    keep = torch.ones(len(d["answer"]), dtype=torch.bool) if subset is None else d["image_index"] < subset
    return QuestionBatches(d["images"], d["image_index"][keep], d["ids"][keep], d["answer"][keep],
                           images_per_batch, lengths=d["lengths"][keep], shuffle=shuffle, seed=seed)
