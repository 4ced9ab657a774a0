"""easy-VQA: 64x64 images of one shape, questions about its shape and colour, 13 answers.

Ships inside the ``easy-vqa`` package (4,000 train / 1,000 test images,
38,575 / 9,673 questions), so it needs no download.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image


@functools.cache
def _split(split: str):
    import easy_vqa

    if split == "train":
        return easy_vqa.get_train_questions(), easy_vqa.get_train_image_paths()
    if split == "test":
        return easy_vqa.get_test_questions(), easy_vqa.get_test_image_paths()
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def answers() -> list[str]:
    """The 13 possible answers, in the package's order."""
    import easy_vqa

    return list(easy_vqa.get_answers())


def easy_vqa_split(split: str = "train") -> dict:
    """One split as plain data.

    Returns a dict with ``images`` ``[M, 3, 64, 64]`` float32 in [0, 1] (M distinct images),
    ``questions`` (list of str, one per question), ``image_index`` ``[Q]`` int64 (which image
    a question asks about), ``answer`` ``[Q]`` int64 (index into :func:`answers`).
    """
    (questions, ans, image_ids), paths = _split(split)
    ids = sorted(paths)
    pos = {img_id: k for k, img_id in enumerate(ids)}
    images = np.stack([np.asarray(Image.open(paths[i]).convert("RGB")) for i in ids])
    vocab = {a: k for k, a in enumerate(answers())}
    return {
        "images": torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0,
        "questions": list(questions),
        "image_index": torch.tensor([pos[i] for i in image_ids]),
        "answer": torch.tensor([vocab[a] for a in ans]),
    }
