"""easy-VQA as captioned images: each image's colour and shape, read from its questions.

easy-VQA has no captions, but every question is about the one shape in its image. Reading
*all* of an image's questions pins both attributes down for (nearly) every image:

* "what color is the triangle?" -> ``blue``: colour blue, and (from the question) shape triangle;
* "does the image contain a circle?" -> ``no``: not a circle (with 3 shapes, two such answers name the third);
* "is there not a red shape?" -> ``no``: the negation flips it, so the colour is red.

``captions(split)`` returns ``colour [M]``, ``shape [M]`` (indices into :data:`COLOURS`, :data:`SHAPES`;
-1 where the questions leave it open) and the caption "a blue circle". :func:`heldout_combos` picks
colour-shape combinations to hold out of training entirely (compositional zero-shot), and
:func:`compositional_split` the training images that avoid them.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import torch

from mmcourse.data.vqa import _split, easy_vqa_split

COLOURS = ("red", "green", "blue", "yellow", "teal", "brown", "gray", "black")
SHAPES = ("circle", "rectangle", "triangle")
COMBOS = tuple((c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES)))  # 24 (colour, shape)
_NEGATION = re.compile(r"\bnot\b|\bno\b")  # "is there not a ...", "is no ... present?"


def caption(colour: int, shape: int, template: str = "a {colour} {shape}") -> str:
    """``caption(2, 0) == "a blue circle"``; ``template`` may use ``{colour}`` and ``{shape}``."""
    return template.format(colour=COLOURS[colour], shape=SHAPES[shape])


def combo_id(colour: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Index into :data:`COMBOS` of each (colour, shape): ``colour * 3 + shape`` ``[N]``."""
    return colour * len(SHAPES) + shape


def read_attributes(questions: list[str], answers: list[str], image_ids: list[int], n_images: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Colour and shape of each image ``[n_images]`` (-1 if undetermined) from its questions.

    Raises ``ValueError`` if an image's questions contradict each other.
    """
    colour_ok = np.ones((n_images, len(COLOURS)), dtype=bool)  # candidates still possible
    shape_ok = np.ones((n_images, len(SHAPES)), dtype=bool)
    for q, a, i in zip(questions, answers, image_ids, strict=True):
        words = re.findall(r"[a-z]+", q.lower())
        cs = [COLOURS.index(w) for w in words if w in COLOURS]
        ss = [SHAPES.index(w) for w in words if w in SHAPES]
        if a in COLOURS or a in SHAPES:  # a "what" question: the answer is one attribute...
            if a in COLOURS:
                colour_ok[i] &= np.arange(len(COLOURS)) == COLOURS.index(a)
            else:
                shape_ok[i] &= np.arange(len(SHAPES)) == SHAPES.index(a)
            for c in cs:  # ... and what it names ("what color is the triangle?") is the other
                colour_ok[i] &= np.arange(len(COLOURS)) == c
            for s in ss:
                shape_ok[i] &= np.arange(len(SHAPES)) == s
            continue
        if a not in ("yes", "no"):
            raise ValueError(f"unexpected answer {a!r} to {q!r}")
        true = (a == "yes") != bool(_NEGATION.search(q.lower()))
        if len(cs) + len(ss) != 1:
            if true:  # "is there a blue circle?" -> yes: both hold
                for c in cs:
                    colour_ok[i] &= np.arange(len(COLOURS)) == c
                for s in ss:
                    shape_ok[i] &= np.arange(len(SHAPES)) == s
            continue  # false with two attributes named: not both (nothing definite)
        ok, k = (colour_ok, cs[0]) if cs else (shape_ok, ss[0])
        if true:
            ok[i] &= np.arange(ok.shape[1]) == k
        else:
            ok[i, k] = False
    for name, ok in (("colour", colour_ok), ("shape", shape_ok)):
        bad = np.flatnonzero(~ok.any(1))
        if len(bad):
            raise ValueError(f"the questions about image {int(bad[0])} contradict each other ({name})")
    colour = np.where(colour_ok.sum(1) == 1, colour_ok.argmax(1), -1)
    shape = np.where(shape_ok.sum(1) == 1, shape_ok.argmax(1), -1)
    return colour, shape


@functools.cache
def _attributes(split: str, what_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    (questions, answers, image_ids), paths = _split(split)
    ids = sorted(paths)
    pos = {img_id: k for k, img_id in enumerate(ids)}
    rows = [(q, a, pos[i]) for q, a, i in zip(questions, answers, image_ids, strict=True)
            if not what_only or a not in ("yes", "no")]
    q, a, i = (list(t) for t in zip(*rows, strict=True))
    colour, shape = read_attributes(q, a, i, len(ids))
    return torch.from_numpy(colour), torch.from_numpy(shape)


def captions(split: str = "train", what_only: bool = False) -> dict:
    """easy-VQA images with their colour, shape and caption.

    Returns ``images [M, 3, 64, 64]`` float32 in [0, 1] (as :func:`easy_vqa_split`), ``colour [M]``,
    ``shape [M]`` int64 (-1: undetermined), ``combo [M]`` (index into :data:`COMBOS`, -1 if either is
    undetermined), ``caption`` (list of M str, "" if undetermined). ``what_only=True`` reads only the
    "what colour / what shape" questions (fewer images get both attributes).
    """
    colour, shape = _attributes(split, what_only)
    known = (colour >= 0) & (shape >= 0)
    combo = torch.where(known, combo_id(colour, shape), torch.full_like(colour, -1))
    return {
        "images": easy_vqa_split(split)["images"],
        "colour": colour, "shape": shape, "combo": combo,
        "caption": [caption(int(c), int(s)) if k else "" for c, s, k in zip(colour, shape, known, strict=True)],
    }  # fmt: skip


def heldout_combos(n: int = 6, seed: int = 0) -> list[int]:
    """``n`` combos (indices into :data:`COMBOS`) to hold out of training, seeded.

    Each held-out combo has its own colour, and the shapes are spread evenly, so every colour
    and every shape is still seen in training (with other partners): ``n <= len(COLOURS)``.
    """
    if not 0 < n <= len(COLOURS):
        raise ValueError(f"n must be in 1..{len(COLOURS)} (one held-out combo per colour), got {n}")
    g = np.random.default_rng(seed)
    colours = g.permutation(len(COLOURS))[:n]
    shapes = g.permutation([k % len(SHAPES) for k in range(n)])  # each shape n/3 times
    return sorted(int(c) * len(SHAPES) + s for c, s in zip(colours, shapes, strict=True))


def compositional_split(combo: torch.Tensor, heldout: list[int]) -> torch.Tensor:
    """Indices ``[K]`` of the items whose combo is known and not held out (the training set)."""
    held = torch.tensor(heldout, dtype=combo.dtype)
    return torch.nonzero((combo >= 0) & ~torch.isin(combo, held)).squeeze(1)
