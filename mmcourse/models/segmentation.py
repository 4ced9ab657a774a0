"""Semantic segmentation: a tiny U-Net and the IoU score.

A classifier maps an image to one label; a segmenter maps it to a label *per pixel*. A fully
convolutional network (FCN, Long et al. 2015) does this with no dense layer: it downsamples to
see context, then upsamples back to the input's size. A U-Net (Ronneberger et al. 2015) adds
skip connections that concatenate each encoder level to the decoder level of the same size,
so fine detail (where exactly the edge is) survives the downsampling.

    x [B, C, H, W] -> enc1 [B, w, H, W] -> enc2 [B, 2w, H/2, W/2] -> bottleneck [B, 4w, H/4, W/4]
      -> up2 (+enc2) [B, 2w, H/2, W/2] -> up1 (+enc1) [B, w, H, W] -> logits [B, K, H, W]
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mmcourse.models.cnn import check_input, conv_bn_relu


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """Two conv3-BN-ReLU: ``[B, c_in, H, W] -> [B, c_out, H, W]``."""
    return nn.Sequential(conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out))


class TinyUNet(nn.Module):
    """A two-level U-Net. ``skip=False`` drops the skip connections: a plain encoder-decoder FCN.

    Input ``[B, in_channels, H, W]`` with H, W divisible by 4; output logits ``[B, num_classes, H, W]``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 4, width: int = 16, skip: bool = True):
        super().__init__()
        self.in_channels, self.num_classes, self.skip = in_channels, num_classes, skip
        w, k = width, 2 if skip else 1  # decoder inputs double when the skip is concatenated
        self.enc1 = double_conv(in_channels, w)
        self.enc2 = double_conv(w, 2 * w)
        self.bottleneck = double_conv(2 * w, 4 * w)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)  # [B, 4w, H/4] -> [B, 2w, H/2]
        self.dec2 = double_conv(k * 2 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)  # [B, 2w, H/2] -> [B, w, H]
        self.dec1 = double_conv(k * w, w)
        self.out = nn.Conv2d(w, num_classes, 1)  # a per-pixel linear classifier

    def _check(self, x: torch.Tensor) -> None:
        check_input(x, self.in_channels, "TinyUNet")
        if x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"TinyUNet needs H and W divisible by 4, got {tuple(x.shape[2:])}")

    def _run(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        self._check(x)
        a: OrderedDict[str, torch.Tensor] = OrderedDict()
        a["enc1"] = e1 = self.enc1(x)  # [B, w, H, W]
        a["enc2"] = e2 = self.enc2(self.pool(e1))  # [B, 2w, H/2, W/2]
        a["bottleneck"] = b = self.bottleneck(self.pool(e2))  # [B, 4w, H/4, W/4]
        u2 = self.up2(b)  # [B, 2w, H/2, W/2]
        a["dec2"] = d2 = self.dec2(torch.cat([u2, e2], 1) if self.skip else u2)
        u1 = self.up1(d2)  # [B, w, H, W]
        a["dec1"] = d1 = self.dec1(torch.cat([u1, e1], 1) if self.skip else u1)
        a["logits"] = self.out(d1)  # [B, K, H, W]
        return a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)["logits"]

    def feature_maps(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """``{enc1, enc2, bottleneck, dec2, dec1, logits}`` activations ``[B, C_l, H_l, W_l]`` (no grad)."""
        with torch.no_grad():
            return self._run(x)


def iou_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Intersection over union of each class over all pixels: ``[num_classes]`` float.

    ``pred`` and ``target`` are integer label maps of the same shape (e.g. ``[N, H, W]``).
    IoU_k = |pred == k and target == k| / |pred == k or target == k|; NaN for a class that
    appears in neither.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError("pred and target must be integer label maps (use logits.argmax(1))")
    p, t = pred.reshape(-1).long(), target.reshape(-1).long()
    if len(t) and (min(p.min(), t.min()) < 0 or max(p.max(), t.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    cm = torch.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)
    inter = cm.diag().double()
    union = cm.sum(0).double() + cm.sum(1).double() - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan"))).float()


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_background: bool = True) -> float:
    """Mean of :func:`iou_per_class` over the classes present (class 0 left out if ``ignore_background``)."""
    iou = iou_per_class(pred, target, num_classes)
    if ignore_background:
        iou = iou[1:]
    return float(iou[~iou.isnan()].mean())
