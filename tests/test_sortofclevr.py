"""Sort-of-CLEVR: deterministic scenes, and answers checked against hand-worked scenes and against an
independent computation that reads the scene back from the rendered pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmcourse.data.sortofclevr import (
    ANSWERS,
    COLOURS,
    KINDS,
    MIN_GAP,
    QUESTION_DIM,
    RGB,
    Scene,
    answer,
    encode_question,
    random_scene,
    render,
    sort_of_clevr,
)

# red (5, 5) square, green (26, 5) circle, blue (5, 27) circle, orange (27, 26) square,
# gray (12, 14) circle, yellow (20, 20) square. Squared distances worked out by hand:
#   red:   green 441, blue 484, orange 925, gray 130, yellow 450
#   green: red 441, blue 925, orange 442, gray 277, yellow 261
#   gray:  red 130, green 277, blue 218, orange 369, yellow 100
HAND = Scene(np.array([[5, 5], [26, 5], [5, 27], [27, 26], [12, 14], [20, 20]]), np.array([0, 1, 1, 0, 1, 0]))
EXPECTED = {
    ("red", "shape"): "square", ("red", "horizontal"): "left", ("red", "vertical"): "top",
    ("red", "closest"): "circle", ("red", "furthest"): "square", ("red", "count"): "3",
    ("green", "shape"): "circle", ("green", "horizontal"): "right", ("green", "vertical"): "top",
    ("green", "closest"): "square", ("green", "furthest"): "circle", ("green", "count"): "3",
    ("gray", "closest"): "square", ("gray", "furthest"): "square", ("gray", "horizontal"): "left",
    ("blue", "vertical"): "bottom", ("orange", "count"): "3", ("yellow", "horizontal"): "right",
}  # fmt: skip


@pytest.mark.parametrize(("colour", "kind"), list(EXPECTED))
def test_hand_made_scene(colour, kind):
    assert ANSWERS[answer(HAND, COLOURS.index(colour), kind)] == EXPECTED[colour, kind]


def test_centre_line_and_counts():
    # x = 16 = S / 2 is right, x = 15 left; all squares: count 6; one circle among squares: count 1.
    s = Scene(np.array([[16, 4], [15, 28], [4, 16], [28, 15], [9, 9], [23, 23]]), np.array([0, 0, 0, 0, 0, 1]))
    assert ANSWERS[answer(s, 0, "horizontal")] == "right" and ANSWERS[answer(s, 1, "horizontal")] == "left"
    assert ANSWERS[answer(s, 2, "vertical")] == "bottom" and ANSWERS[answer(s, 3, "vertical")] == "top"
    assert ANSWERS[answer(s, 0, "count")] == "5" and ANSWERS[answer(s, 5, "count")] == "1"


def read_scene(image: torch.Tensor) -> list[tuple[float, float, str]]:
    """Independent of the generator's geometry: find each colour's pixels, their centroid and the
    shape (a square of half-width 3 covers 49 pixels, a circle of radius 3 covers 29)."""
    px = (image * 255).round().to(torch.int64).permute(1, 2, 0)  # [S, S, 3]
    out = []
    for c in COLOURS:
        ys, xs = torch.nonzero((px == torch.tensor(RGB[c])).all(-1), as_tuple=True)
        assert len(xs) in (29, 49), (c, len(xs))
        out.append((xs.float().mean().item(), ys.float().mean().item(), "square" if len(xs) == 49 else "circle"))
    return out


def brute_force(objs: list[tuple[float, float, str]], k: int, kind: str, size: int = 32) -> str:
    x, y, shape = objs[k]
    if kind == "shape":
        return shape
    if kind == "horizontal":
        return "left" if x < size / 2 else "right"
    if kind == "vertical":
        return "top" if y < size / 2 else "bottom"
    if kind == "count":
        return str(sum(o[2] == shape for o in objs))
    dist = {j: math.dist((x, y), o[:2]) for j, o in enumerate(objs) if j != k}
    j = (min if kind == "closest" else max)(dist, key=dist.get)
    return objs[j][2]


def test_answers_match_an_independent_reading_of_the_pixels():
    data = sort_of_clevr(40, seed=5)
    for i in range(40):
        objs = read_scene(data["images"][i])
        rows = torch.nonzero(data["image_index"] == i)[:, 0]
        assert len(rows) == 36
        for r in rows.tolist():
            k, kind = int(data["colour"][r]), KINDS[int(data["kind"][r])]
            assert ANSWERS[int(data["answer"][r])] == brute_force(objs, k, kind), (i, COLOURS[k], kind)


def test_deterministic_and_seed_dependent():
    a, b, c = sort_of_clevr(6, seed=3), sort_of_clevr(6, seed=3), sort_of_clevr(6, seed=4)
    for key in ("images", "question", "answer", "image_index", "kind", "colour"):
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["images"], c["images"])


def test_scenes_keep_their_gap_and_have_no_ties():
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = random_scene(rng)
        d = ((s.centres[:, None] - s.centres[None]) ** 2).sum(-1)
        off = d[~np.eye(6, dtype=bool)].reshape(6, 5)
        assert off.min() >= MIN_GAP**2
        srt = np.sort(off, 1)
        assert (srt[:, 0] < srt[:, 1]).all() and (srt[:, -1] > srt[:, -2]).all()
        assert (s.centres >= 3).all() and (s.centres <= 28).all()


def test_question_encoding_is_the_papers():
    q = encode_question(2, "furthest")  # blue, relational, second subtype
    assert q.shape == (QUESTION_DIM,) and q.sum() == 3
    assert q[2] == 1 and q[6 + 1] == 1 and q[8 + 1] == 1
    assert encode_question(0, "shape").nonzero()[:, 0].tolist() == [0, 6, 8]
    data = sort_of_clevr(2, seed=0)
    assert data["question"].shape == (72, QUESTION_DIM) and data["relational"].sum() == 36
    # answers per kind stay inside their own answer group
    groups = {"shape": {"square", "circle"}, "horizontal": {"left", "right"}, "vertical": {"top", "bottom"},
              "closest": {"square", "circle"}, "furthest": {"square", "circle"}, "count": set("123456")}
    for k, kind in enumerate(KINDS):
        assert {ANSWERS[a] for a in data["answer"][data["kind"] == k].tolist()} <= groups[kind]


def test_render_shapes():
    img = render(HAND)
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32
    assert img[:, 0, 0].tolist() == [1.0, 1.0, 1.0]  # white background
    assert (img[:, 5 + 3, 5 + 3] * 255).tolist() == [255.0, 0.0, 0.0]  # red square: its corner is red
    assert img[:, 5 + 3, 26 + 3].tolist() == [1.0, 1.0, 1.0]  # green circle: its bounding-box corner is not


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        answer(HAND, 0, "colour")
    with pytest.raises(ValueError, match="colour must be"):
        answer(HAND, 6, "shape")
    with pytest.raises(ValueError, match="6 objects"):
        Scene(np.zeros((5, 2), int), np.zeros(5, int))
    with pytest.raises(ValueError, match="n_images"):
        sort_of_clevr(0)
