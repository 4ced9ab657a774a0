"""Solutions to the exercises of chapter 03 (convolutional networks). Each asserts its answer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.data import photo
from mmcourse.models.cnn import ResidualCNN
from mmcourse.models.conv import KERNELS, filter_image, out_size, receptive_field


def conv2d_loops(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """x [C, H, W], w [O, C, k, k], b [O] -> [O, H_out, W_out] with any stride and padding."""
    x = F.pad(x, (padding, padding, padding, padding))
    o_count, _, k, _ = w.shape
    h_out = (x.shape[1] - k) // stride + 1
    w_out = (x.shape[2] - k) // stride + 1
    out = torch.empty(o_count, h_out, w_out)
    for o in range(o_count):
        for i in range(h_out):
            for j in range(w_out):
                r, c = i * stride, j * stride
                out[o, i, j] = (w[o] * x[:, r : r + k, c : c + k]).sum() + b[o]
    return out


def exercise_1() -> float:
    """Stride and padding by hand: loops == F.conv2d and the size == out_size. Returns the max error."""
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 9, 9, generator=g), torch.randn(4, 3, 3, 3, generator=g), torch.randn(4, generator=g)
    ours = conv2d_loops(x, w, b, stride=2, padding=1)
    ref = F.conv2d(x[None], w, b, stride=2, padding=1)[0]
    assert ours.shape == ref.shape == (4, out_size(9, 3, 2, 1), out_size(9, 3, 2, 1)) == (4, 5, 5)
    err = float((ours - ref).abs().max())
    assert err < 1e-5, err
    return err


def exercise_2() -> int:
    """Receptive field of one pixel of ResidualCNN's stage3 output, by formula and by gradient."""
    layers = [(3, 1, 1), (2, 2, 1),  # stem: conv3 + max-pool 2
              (3, 1, 1), (3, 1, 1),  # stage1
              (3, 2, 1), (3, 1, 1),  # stage2 (first conv has stride 2)
              (3, 2, 1), (3, 1, 1)]  # stage3  # fmt: skip
    rf = receptive_field(layers)
    assert rf == 48, rf  # larger than the 28x28 image: each stage3 pixel sees (almost) all of it
    torch.manual_seed(0)
    model = ResidualCNN().eval()
    x = torch.randn(1, 1, 64, 64, requires_grad=True)  # a larger canvas, so the field is not clipped
    model.features(x)[0, :, 4, 4].sum().backward()  # one stage3 pixel (for 64x64 inputs the map is 8x8)
    rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero().flatten()
    measured = int(rows.max() - rows.min() + 1)
    assert measured == rf, (measured, rf)
    return rf


def exercise_3() -> torch.Tensor:
    """Learn Sobel-x from one image by gradient descent; returns the learned [3, 3] kernel."""
    cat = photo("chelsea").mean(0, keepdim=True)[:, ::3, ::3].contiguous()  # [1, 100, 151] grey, a third
    target = filter_image(cat, KERNELS["sobel x"])  # [1, H, W]
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    # The loss is quadratic in the 9 weights, so L-BFGS (a quasi-Newton method) converges in a few steps.
    opt = torch.optim.LBFGS(conv.parameters(), lr=1, max_iter=25, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.mse_loss(conv(cat[None])[0], target)
        loss.backward()
        return loss

    opt.step(closure)
    kernel = conv.weight.detach()[0, 0]
    assert torch.allclose(kernel, KERNELS["sobel x"], atol=0.01), kernel
    return kernel


if __name__ == "__main__":
    print(exercise_1(), exercise_2(), exercise_3(), sep="\n")


def exercise_4() -> tuple[float, float]:
    """AP by hand for the ranking TP, TP, FP, TP, FP, FP, TP with 5 objects, and with the last TP first."""
    from mmcourse.models.detection import average_precision

    def by_hand(flags: list[bool], n_gt: int) -> float:
        precision, recall, hits = [], [], 0
        for k, t in enumerate(flags, 1):
            hits += t
            precision.append(hits / k)
            recall.append(hits / n_gt)
        envelope = [max(precision[k:]) for k in range(len(precision))]  # non-increasing from the right
        return sum((r - r_prev) * p for r, r_prev, p in zip(recall, [0.0] + recall[:-1], envelope, strict=True))

    flags = [True, True, False, True, False, False, True]
    scores = torch.linspace(1.0, 0.1, len(flags))  # ranked: highest score first
    ap = average_precision(scores, torch.tensor(flags), n_gt=5)
    assert abs(ap - by_hand(flags, 5)) < 1e-12
    assert abs(ap - 0.2 * (1 + 1 + 3 / 4 + 4 / 7)) < 1e-12  # precision 1, 1, 3/4, 4/7 at the four hits
    moved = [True, True, True, False, True, False, False]  # the last true positive ranked third instead
    ap_moved = average_precision(scores, torch.tensor(moved), n_gt=5)
    assert abs(ap_moved - 0.2 * (1 + 1 + 1 + 4 / 5)) < 1e-12 and ap_moved > ap
    return ap, ap_moved
