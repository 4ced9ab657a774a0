"""Sort-of-CLEVR (Santoro et al., 2017), generated in code: six coloured objects, one per colour,
each a square or a circle, and questions about them, answered from the scene itself.

    scene = random_scene(rng)                         # centres [6, 2] (x, y), shapes [6]
    image = render(scene)                             # [3, S, S] float32 in [0, 1], white background
    answer(scene, colour=0, kind="closest")           # index into ANSWERS
    data = sort_of_clevr(1000, seed=0)                # every question of every scene, as tensors

The recipe of the paper, scaled to a 2-core CPU (the paper's values in brackets):
images of ``SIZE`` = 32 pixels [75], objects of half-width ``RADIUS`` = 3 px [5] whose centres are at
least ``MIN_GAP`` = 9 px apart [10], so that they never touch; all 6 x 6 = 36 questions of each scene
[10 relational + 10 non-relational, drawn at random]. Questions are encoded as the paper does: an
11-dim vector, one-hot colour (6), then relational or not (2), then the question subtype (3).

Questions (``KINDS``), about the object of colour ``c``:
    non-relational  ``shape``: square / circle; ``horizontal``: left / right of the image's centre line
                    (x < S / 2 is left); ``vertical``: top / bottom (y < S / 2 is top; y grows downwards)
    relational      ``closest`` / ``furthest``: the shape of the object nearest to / furthest from it
                    (Euclidean distance between centres); ``count``: how many objects (itself included)
                    have its shape, 1..6
A scene whose nearest or furthest neighbour of some object is tied is redrawn, so every answer is unique.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SIZE, RADIUS, MIN_GAP = 32, 3, 9
COLOURS = ("red", "green", "blue", "orange", "gray", "yellow")
RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "orange": (255, 156, 0),
       "gray": (128, 128, 128), "yellow": (255, 255, 0)}
SHAPES = ("square", "circle")
NON_RELATIONAL = ("shape", "horizontal", "vertical")
RELATIONAL = ("closest", "furthest", "count")
KINDS = NON_RELATIONAL + RELATIONAL
ANSWERS = ("square", "circle", "left", "right", "top", "bottom", "1", "2", "3", "4", "5", "6")
QUESTION_DIM = len(COLOURS) + 2 + 3  # 11


@dataclass(frozen=True)
class Scene:
    """``centres`` ``[6, 2]`` int (x, y) in pixels, object ``k`` has colour ``COLOURS[k]``;
    ``shapes`` ``[6]`` int (0 square, 1 circle); ``size``: the image side in pixels."""

    centres: np.ndarray
    shapes: np.ndarray
    size: int = SIZE

    def __post_init__(self):
        c, s = np.asarray(self.centres), np.asarray(self.shapes)
        if c.shape != (len(COLOURS), 2) or s.shape != (len(COLOURS),):
            raise ValueError(f"a scene has {len(COLOURS)} objects: centres [6, 2] and shapes [6], "
                             f"got {c.shape} and {s.shape}")
        if not np.isin(s, (0, 1)).all():
            raise ValueError(f"shapes must be 0 (square) or 1 (circle), got {s.tolist()}")


def _distances(centres: np.ndarray) -> np.ndarray:
    """Squared distances between centres ``[6, 6]`` (integers: exact, so ties are found)."""
    d = centres[:, None, :].astype(np.int64) - centres[None, :, :]
    return (d**2).sum(-1)


def _has_tie(centres: np.ndarray) -> bool:
    d = _distances(centres)
    for k in range(len(d)):
        others = np.sort(np.delete(d[k], k))
        if others[0] == others[1] or others[-1] == others[-2]:
            return True
    return False


def random_scene(rng: np.random.Generator, size: int = SIZE, radius: int = RADIUS, min_gap: int = MIN_GAP) -> Scene:
    """Six objects at random integer centres inside the image, at least ``min_gap`` px apart, random
    shapes; redrawn until no object's nearest or furthest neighbour is tied."""
    lo, hi = radius, size - 1 - radius
    while True:
        centres: list[tuple[int, int]] = []
        for _ in range(1000):
            p = (int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1)))
            if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 >= min_gap**2 for q in centres):
                centres.append(p)
                if len(centres) == len(COLOURS):
                    break
        c = np.array(centres)
        if len(centres) == len(COLOURS) and not _has_tie(c):
            return Scene(c, rng.integers(0, 2, len(COLOURS)), size)


def render(scene: Scene, radius: int = RADIUS) -> torch.Tensor:
    """The scene as an image ``[3, S, S]`` float32 in [0, 1]: white background; a square covers
    ``|dx|, |dy| <= radius``, a circle ``dx^2 + dy^2 <= radius^2`` around its centre."""
    s = scene.size
    img = np.full((s, s, 3), 255, np.uint8)
    yy, xx = np.mgrid[0:s, 0:s]
    for k, ((x, y), shape) in enumerate(zip(scene.centres, scene.shapes, strict=True)):
        dx, dy = xx - x, yy - y
        inside = (np.maximum(abs(dx), abs(dy)) <= radius) if shape == 0 else (dx**2 + dy**2 <= radius**2)
        img[inside] = RGB[COLOURS[k]]
    return torch.from_numpy(img).permute(2, 0, 1).float() / 255.0


def answer(scene: Scene, colour: int, kind: str) -> int:
    """The answer (index into ``ANSWERS``) to question ``kind`` about the object of colour ``colour``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not 0 <= colour < len(COLOURS):
        raise ValueError(f"colour must be 0..{len(COLOURS) - 1} (an index into COLOURS), got {colour}")
    (x, y), shape = scene.centres[colour], int(scene.shapes[colour])
    if kind == "shape":
        return ANSWERS.index(SHAPES[shape])
    if kind == "horizontal":
        return ANSWERS.index("left" if x < scene.size / 2 else "right")
    if kind == "vertical":
        return ANSWERS.index("top" if y < scene.size / 2 else "bottom")
    if kind == "count":
        return ANSWERS.index(str(int((scene.shapes == shape).sum())))
    d = _distances(scene.centres)[colour].astype(float)  # [6]
    d[colour] = np.inf if kind == "closest" else -np.inf
    other = int(d.argmin() if kind == "closest" else d.argmax())
    return ANSWERS.index(SHAPES[int(scene.shapes[other])])


def encode_question(colour: int, kind: str) -> torch.Tensor:
    """The paper's question vector ``[11]``: one-hot colour (6), relational or not (2), subtype (3)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    q = torch.zeros(QUESTION_DIM)
    q[colour] = 1.0
    k = KINDS.index(kind)
    q[len(COLOURS) + (k >= 3)] = 1.0
    q[len(COLOURS) + 2 + k % 3] = 1.0
    return q


def question_text(colour: int, kind: str) -> str:
    """The question in words (for pictures and widgets)."""
    c = COLOURS[colour]
    return {"shape": f"what shape is the {c} object?",
            "horizontal": f"is the {c} object on the left or the right?",
            "vertical": f"is the {c} object at the top or the bottom?",
            "closest": f"what shape is the object closest to the {c} one?",
            "furthest": f"what shape is the object furthest from the {c} one?",
            "count": f"how many objects have the shape of the {c} one?"}[kind]


def sort_of_clevr(n_images: int, seed: int = 0, size: int = SIZE) -> dict:
    """``n_images`` scenes from ``numpy.random.default_rng(seed)`` (the same seed gives the same data)
    and all 36 questions of each.

    Returns a dict with ``images`` ``[M, 3, S, S]`` float32, ``scenes`` (list of :class:`Scene`),
    ``question`` ``[Q, 11]`` float32, ``colour`` ``[Q]``, ``kind`` ``[Q]`` (index into ``KINDS``),
    ``relational`` ``[Q]`` bool, ``image_index`` ``[Q]`` and ``answer`` ``[Q]`` (index into ``ANSWERS``),
    all int64 except where said; ``Q = 36 M``.
    """
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    rng = np.random.default_rng(seed)
    scenes = [random_scene(rng, size) for _ in range(n_images)]
    pairs = [(c, k) for k in range(len(KINDS)) for c in range(len(COLOURS))]
    q = torch.stack([encode_question(c, KINDS[k]) for c, k in pairs])  # [36, 11]
    ans = torch.tensor([[answer(s, c, KINDS[k]) for c, k in pairs] for s in scenes])  # [M, 36]
    kinds = torch.tensor([k for _, k in pairs])
    return {
        "images": torch.stack([render(s) for s in scenes]),
        "scenes": scenes,
        "question": q.repeat(n_images, 1),
        "colour": torch.tensor([c for c, _ in pairs]).repeat(n_images),
        "kind": kinds.repeat(n_images),
        "relational": (kinds >= 3).repeat(n_images),
        "image_index": torch.arange(n_images).repeat_interleave(len(pairs)),
        "answer": ans.reshape(-1),
    }
