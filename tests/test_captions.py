"""easy-VQA captions: attributes read from the questions, and held-out combinations kept out of training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmcourse.data.captions import (
    COLOURS,
    COMBOS,
    SHAPES,
    caption,
    captions,
    combo_id,
    compositional_split,
    heldout_combos,
    read_attributes,
)


def test_read_attributes_from_questions():
    qa = [
        ("what color is the triangle?", "blue", 0),  # colour and shape from one question
        ("does the image contain a circle?", "no", 1),  # two denials name the third shape
        ("is there not a rectangle in the image?", "no", 1),  # negated "no": it is a rectangle
        ("is there a red shape?", "no", 1),  # colour still open
        ("is no green shape present?", "no", 2),  # negated: green
        ("is a triangle present?", "no", 2),
        ("what shape is in the image?", "circle", 2),
    ]
    q, a, i = (list(t) for t in zip(*qa, strict=True))
    colour, shape = read_attributes(q, a, i, 3)
    assert colour.tolist() == [COLOURS.index("blue"), -1, COLOURS.index("green")]
    assert shape.tolist() == [SHAPES.index("triangle"), SHAPES.index("rectangle"), SHAPES.index("circle")]
    with pytest.raises(ValueError, match="contradict"):
        read_attributes(["what shape is present?", "is there a circle?"], ["triangle", "yes"], [0, 0], 1)


def test_real_captions_use_yes_no_questions_too():
    what = captions("train", what_only=True)
    full = captions("train")
    assert len(full["combo"]) == 4000
    n_what, n_full = int((what["combo"] >= 0).sum()), int((full["combo"] >= 0).sum())
    assert (n_what, n_full) == (3181, 3578)
    both = (what["combo"] >= 0) & (full["combo"] >= 0)
    assert torch.equal(what["combo"][both], full["combo"][both])  # consistent where both know it
    k = int(torch.nonzero(full["combo"] >= 0)[0])
    assert full["caption"][k] == caption(int(full["colour"][k]), int(full["shape"][k]))
    assert full["images"].shape == (4000, 3, 64, 64)
    assert len(set(full["combo"][full["combo"] >= 0].tolist())) == len(COMBOS)


def test_heldout_combinations_never_appear_in_training():
    held = heldout_combos(6, seed=0)
    assert len(held) == 6 and len(set(held)) == 6
    colours, shapes = [c // len(SHAPES) for c in held], [c % len(SHAPES) for c in held]
    assert len(set(colours)) == 6  # one per colour: every colour is still seen with other shapes
    assert np.bincount(shapes, minlength=3).tolist() == [2, 2, 2]
    data = captions("train")
    train = compositional_split(data["combo"], held)
    assert len(train) > 0 and not torch.isin(data["combo"][train], torch.tensor(held)).any()
    assert (data["combo"][train] >= 0).all()
    held_text = {caption(c // 3, c % 3) for c in held}
    assert not held_text & {data["caption"][i] for i in train.tolist()}
    # every colour and every shape still appears in training
    seen = data["combo"][train]
    assert set((seen // 3).tolist()) == set(range(len(COLOURS))) and set((seen % 3).tolist()) == {0, 1, 2}
    assert heldout_combos(6, seed=1) != held
    assert combo_id(torch.tensor([2]), torch.tensor([1])).item() == 7 and COMBOS[7] == (2, 1)
    with pytest.raises(ValueError, match="one held-out combo per colour"):
        heldout_combos(9)
