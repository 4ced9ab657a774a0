"""Grid detector: box encoding round trip, NMS in decoding, AP and mAP on hand-made cases."""

import pytest
import torch
import torch.nn.functional as F

from mmcourse.data.shapes import SHAPE_CLASSES, shape_scenes
from mmcourse.models.detection import (
    GridDetector,
    average_precision,
    decode,
    decode_boxes,
    detection_loss,
    encode,
    encode_all,
    match,
    mean_average_precision,
)


def _perfect_output(target: torch.Tensor, num_classes: int = 3) -> torch.Tensor:
    """The head output ``[N, 5 + K, G, G]`` that decodes exactly to the encoded boxes."""
    out = torch.zeros(target.shape[0], 5 + num_classes, *target.shape[-2:])
    out[:, 0] = torch.where(target[:, 0] > 0, 12.0, -12.0)
    off = target[:, 2:4].clamp(1e-6, 1 - 1e-6)
    out[:, 1:3] = torch.log(off / (1 - off))  # the inverse of the sigmoid
    out[:, 3:5] = target[:, 4:6]
    out[:, 5:] = 10 * F.one_hot(target[:, 1].long(), num_classes).permute(0, 3, 1, 2)
    return out


def test_encode_by_hand():
    boxes = torch.tensor([[3.0, 10.0, 13.0, 14.0]])  # centre (8, 12): cell row 1, column 1 of 8-pixel cells
    t = encode(boxes, torch.tensor([2]), grid=4, stride=8)
    assert t.shape == (6, 4, 4) and t[0].sum() == 1 and t[0, 1, 1] == 1
    assert t[1, 1, 1] == 1  # label 2 -> class index 1
    torch.testing.assert_close(t[2:, 1, 1], torch.tensor([0.0, 0.5, torch.tensor(10 / 8).log(), torch.tensor(0.5).log()]))


def test_encode_decode_round_trip():
    scenes = shape_scenes(40, seed=5)
    target = encode_all(scenes.boxes, scenes.labels, grid=6, stride=8)  # [40, 6, 6, 6]
    assert int(target[:, 0].sum()) == sum(len(b) for b in scenes.boxes)
    dets = decode(_perfect_output(target), stride=8)
    for d, boxes, labels in zip(dets, scenes.boxes, scenes.labels, strict=False):
        assert len(d["boxes"]) == len(boxes)
        # match each true box to its decoded copy
        order = torch.cdist(boxes, d["boxes"]).argmin(1)
        torch.testing.assert_close(d["boxes"][order], boxes, atol=1e-3, rtol=0)
        assert torch.equal(d["labels"][order], labels)
    mAP, ap = mean_average_precision(dets, scenes.boxes, scenes.labels, 3)
    assert mAP == 1.0 and set(ap) == {1, 2, 3}


def test_decode_boxes_by_hand():
    out = torch.zeros(1, 8, 2, 2)  # logits 0: offset 0.5, size 1 cell
    out[0, 3, 1, 0] = torch.tensor(2.0).log()  # the cell at row 1, column 0 is twice as wide
    boxes = decode_boxes(out, stride=10)  # [1, 2, 2, 4]
    torch.testing.assert_close(boxes[0, 0, 0], torch.tensor([0.0, 0.0, 10.0, 10.0]))
    torch.testing.assert_close(boxes[0, 0, 1], torch.tensor([10.0, 0.0, 20.0, 10.0]))
    torch.testing.assert_close(boxes[0, 1, 0], torch.tensor([-5.0, 10.0, 15.0, 20.0]))


def test_decode_uses_nms_within_a_class():
    """Two cells predicting overlapping boxes of one class: NMS keeps the better one; another class survives."""
    out = torch.full((1, 8, 1, 3), -12.0)
    out[0, 0] = torch.tensor([[3.0, 2.0, 1.0]])  # objectness of the three cells
    out[0, 1:3] = 0.0  # centre offsets 0.5: centres x = 4, 12, 20, y = 4
    out[0, 3] = torch.tensor(4.0).log()  # boxes 4 cells (32 px) wide, 1 cell high
    out[0, 4] = 0.0
    out[0, 5:, 0, :] = torch.tensor([[9.0, 9.0, -9.0], [-9.0, -9.0, 9.0], [-9.0, -9.0, -9.0]])  # labels 1, 1, 2
    # cell 0 box [-12, 0, 20, 8], cell 1 box [-4, 0, 28, 8]: IoU = 24 / 40 = 0.6
    without = decode(out, stride=8, nms=False)[0]
    assert without["labels"].tolist() == [1, 1, 2]  # sorted by score
    torch.testing.assert_close(without["boxes"][:2], torch.tensor([[-12.0, 0, 20, 8], [-4, 0, 28, 8]]))
    with_nms = decode(out, stride=8)[0]
    assert with_nms["labels"].tolist() == [1, 2]  # the weaker class-1 box is gone, the class-2 box stays
    torch.testing.assert_close(with_nms["boxes"][0], without["boxes"][0])
    assert len(decode(out, stride=8, iou_threshold=0.65)[0]["boxes"]) == 3  # 0.6 < 0.65: both kept
    # score sigmoid(1) = 0.73 < 0.8: the class-2 box is dropped before NMS, which removes cell 1's
    assert decode(out, stride=8, score_threshold=0.8)[0]["labels"].tolist() == [1]


def test_average_precision_hand_case():
    # 3 true objects; ranked detections TP, FP, TP, FP: precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3.
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    tp = torch.tensor([True, False, True, False])
    assert average_precision(scores, tp, n_gt=3) == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)
    # COCO: the envelope at recall 0..0.33 (34 points) is 1, at 0.34..0.66 (33 points) 2/3, then 0.
    assert average_precision(scores, tp, n_gt=3, interpolation="coco") == pytest.approx((34 + 33 * 2 / 3) / 101)
    # order matters, not the input order: shuffled input, same answer
    perm = torch.tensor([2, 0, 3, 1])
    assert average_precision(scores[perm], tp[perm], 3) == average_precision(scores, tp, 3)
    assert average_precision(torch.tensor([]), torch.tensor([], dtype=torch.bool), 2) == 0.0
    assert average_precision(torch.tensor([0.5]), torch.tensor([False]), 0) != average_precision(
        torch.tensor([0.5]), torch.tensor([False]), 0)  # NaN without ground truth


def _brute_force_ap(scores, tp, n_gt):
    """AP by its definition: the mean over true objects of the best precision at or beyond its recall."""
    ranked = sorted(zip(scores.tolist(), tp.tolist(), strict=False), key=lambda p: -p[0])
    prec, rec, hits = [], [], 0
    for k, (_, t) in enumerate(ranked, 1):
        hits += t
        prec.append(hits / k)
        rec.append(hits / n_gt)
    total = 0.0
    for level in range(1, n_gt + 1):  # recall level/n_gt: best precision with recall at least that
        reach = [p for p, r in zip(prec, rec, strict=False) if r >= level / n_gt - 1e-12]
        total += max(reach) if reach else 0.0
    return total / n_gt


def test_average_precision_matches_brute_force_on_random_cases():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        d = int(torch.randint(1, 15, (), generator=g))
        scores = torch.rand(d, generator=g)
        tp = torch.rand(d, generator=g) < 0.6
        n_gt = int(tp.sum()) + int(torch.randint(0, 4, (), generator=g))
        if n_gt == 0:
            continue
        assert average_precision(scores, tp, n_gt) == pytest.approx(_brute_force_ap(scores, tp, n_gt))


def test_match_greedy_duplicates_and_threshold():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    pred = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 26, 30], [50, 50, 60, 60]])
    scores = torch.tensor([0.5, 0.9, 0.8, 0.7])
    # the 0.9 box (IoU 0.81) takes the first object; the exact 0.5 box is then a duplicate (FP);
    # [20,20,26,30] has IoU 0.6 with the second object; the far box matches nothing.
    assert match(pred, scores, gt).tolist() == [False, True, True, False]
    assert match(pred, scores, gt, iou_threshold=0.7).tolist() == [False, True, False, False]
    assert match(pred[:0], scores[:0], gt).tolist() == []


def test_mean_average_precision_two_images():
    gt_boxes = [torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10]]), torch.tensor([[5.0, 5, 15, 15]])]
    gt_labels = [torch.tensor([1, 2]), torch.tensor([1])]
    preds = [
        {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 0, 30, 10]]), "scores": torch.tensor([0.9, 0.6]),
         "labels": torch.tensor([1, 1])},  # the second box has the wrong class: a class-1 FP
        {"boxes": torch.tensor([[5.0, 5, 15, 15]]), "scores": torch.tensor([0.7]), "labels": torch.tensor([1])},
    ]
    mAP, ap = mean_average_precision(preds, gt_boxes, gt_labels, num_classes=3)
    # class 1 ranked: 0.9 TP, 0.7 TP, 0.6 FP -> AP 1; class 2: one object, no detection -> 0; class 3: none
    assert ap[1] == pytest.approx(1.0) and ap[2] == 0.0 and ap[3] != ap[3]
    assert mAP == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one prediction per image"):
        mean_average_precision(preds[:1], gt_boxes, gt_labels, 3)


def test_against_torchmetrics_if_installed():
    tm = pytest.importorskip("torchmetrics.detection")
    try:
        metric = tm.MeanAveragePrecision(iou_thresholds=[0.5], class_metrics=True)
    except (ModuleNotFoundError, ImportError) as e:  # needs a COCO backend
        pytest.skip(f"torchmetrics' mAP backend missing: {e}")
    g = torch.Generator().manual_seed(1)
    scenes = shape_scenes(30, seed=7)
    preds = []
    for boxes, labels in zip(scenes.boxes, scenes.labels, strict=False):  # jittered copies, wrong labels, spurious boxes
        noisy = boxes + 3 * torch.randn(boxes.shape, generator=g)
        noisy = torch.cat([torch.minimum(noisy[:, :2], noisy[:, 2:] - 1), noisy[:, 2:]], 1)  # keep x1 < x2
        extra = torch.rand(2, 2, generator=g) * 30
        noisy = torch.cat([noisy, torch.cat([extra, extra + 10], 1)])
        lab = torch.cat([labels, torch.randint(1, 4, (2,), generator=g)])
        lab[torch.rand(len(lab), generator=g) < 0.2] = 2
        preds.append({"boxes": noisy, "scores": torch.rand(len(noisy), generator=g), "labels": lab})
    ours, _ = mean_average_precision(preds, scenes.boxes, scenes.labels, 3, interpolation="coco")
    metric.update(preds, [{"boxes": b, "labels": lab} for b, lab in zip(scenes.boxes, scenes.labels, strict=False)])
    ref = float(metric.compute()["map"])
    assert 0.2 < ours < 0.95
    assert ours == pytest.approx(ref, abs=1e-4)


def test_shape_scenes_boxes_are_tight_and_apart():
    s = shape_scenes(30, seed=2)
    assert s.x.shape == (30, 1, 48, 48) and s.classes == SHAPE_CLASSES
    for i, (boxes, labels) in enumerate(zip(s.boxes, s.labels, strict=False)):
        assert 1 <= len(boxes) <= 4 and labels.min() >= 1 and labels.max() <= 3
        for (x1, y1, x2, y2), lab in zip(boxes.long().tolist(), labels.tolist(), strict=False):
            inside = s.masks[i, y1:y2, x1:x2] == lab
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()  # tight
            assert (s.masks[i] == lab).sum() >= inside.sum() > 0
        from torchvision.ops import box_iou

        iou = box_iou(boxes, boxes)
        assert torch.equal(iou > 0, torch.eye(len(boxes), dtype=torch.bool))  # no two boxes overlap
    assert torch.equal(shape_scenes(3, seed=2).x, s.x[:3])  # deterministic per seed
    with pytest.raises(ValueError, match="divisible by cell"):
        shape_scenes(2, size=50)


def test_detector_shapes_bad_input_and_learning():
    torch.manual_seed(0)
    model = GridDetector(width=8)
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 8, 6, 6)
    with pytest.raises(ValueError, match="divisible by 8"):
        model(torch.zeros(1, 1, 44, 44))
    with pytest.raises(ValueError, match="1 input channel"):
        model(torch.zeros(1, 3, 48, 48))
    with pytest.raises(ValueError, match="same grid cell"):
        encode(torch.tensor([[0.0, 0, 4, 4], [1, 1, 5, 5]]), torch.tensor([1, 2]), 4, 8)
    # a few steps on 16 scenes lower the loss a lot (the model can learn the task)
    s = shape_scenes(16, seed=4)
    target = encode_all(s.boxes, s.labels, 6, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = float(detection_loss(model(s.x), target).detach())
    for _ in range(60):
        opt.zero_grad()
        loss = detection_loss(model(s.x), target)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
