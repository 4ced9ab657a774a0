"""2-D convolution and pooling written out with ``unfold`` (im2col), and output-shape arithmetic.

A convolution slides a ``[C_in/groups, kh, kw]`` kernel over the input. ``F.unfold`` cuts every
patch the kernel visits into a column, so the whole convolution becomes one matrix product:

    x [B, C, H, W] --unfold--> cols [B, C*kh*kw, L]       (L = H_out * W_out patches)
    weight [O, C*kh*kw] @ cols -> [B, O, L] --reshape--> [B, O, H_out, W_out]

``conv2d`` equals ``torch.nn.functional.conv2d`` (stride, padding, dilation, groups); the tests
check it to 1e-5. ``out_size`` is the formula every framework uses:

    H_out = floor((H + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IntPair = int | tuple[int, int]


def _pair(v: IntPair, name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(v)
    if len(t) != 2 or not all(isinstance(i, int) for i in t):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def out_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis (the formula above)."""
    if kernel < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError(f"need kernel, stride, dilation >= 1 and padding >= 0, got "
                         f"kernel={kernel} stride={stride} dilation={dilation} padding={padding}")
    span = dilation * (kernel - 1) + 1  # the input extent one kernel application covers
    if size + 2 * padding < span:
        raise ValueError(f"kernel span {span} is larger than the padded input {size + 2 * padding}")
    return (size + 2 * padding - span) // stride + 1


def out_shape(hw: tuple[int, int], kernel: IntPair, stride: IntPair = 1, padding: IntPair = 0,
              dilation: IntPair = 1) -> tuple[int, int]:
    """``(H_out, W_out)`` of a 2-D convolution / pooling on an ``(H, W)`` input."""
    k, s, p, d = (_pair(v, n) for v, n in
                  ((kernel, "kernel"), (stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    return out_size(hw[0], k[0], s[0], p[0], d[0]), out_size(hw[1], k[1], s[1], p[1], d[1])


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: IntPair = 1,
           padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1) -> torch.Tensor:
    """Convolution (cross-correlation, as in every DL framework) via unfold + matmul.

    Args:
        x: ``[B, C_in, H, W]``.
        weight: ``[C_out, C_in / groups, kh, kw]``.
        bias: ``[C_out]`` or None.
    Returns:
        ``[B, C_out, H_out, W_out]`` with sizes from :func:`out_shape`.
    """
    if x.ndim != 4:
        raise ValueError(f"conv2d expects x of shape [B, C, H, W], got {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d expects weight [C_out, C_in/groups, kh, kw], got {tuple(weight.shape)}")
    b, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if groups < 1 or c % groups or o % groups:
        raise ValueError(f"groups={groups} must divide C_in={c} and C_out={o}")
    if cg != c // groups:
        raise ValueError(f"weight expects {cg * groups} input channels ({cg} per group x {groups}), "
                         f"got x with {c}")
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"bias must have shape [{o}], got {tuple(bias.shape)}")
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    h_out, w_out = out_shape((h, w), (kh, kw), stride, padding, dilation)
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)  # [B, C*kh*kw, L]
    cols = cols.view(b, groups, cg * kh * kw, h_out * w_out)  # [B, g, C/g*kh*kw, L]
    wmat = weight.view(groups, o // groups, cg * kh * kw)  # [g, O/g, C/g*kh*kw]
    out = torch.einsum("gok,bgkl->bgol", wmat, cols).reshape(b, o, h_out, w_out)  # [B, O, H_out, W_out]
    if bias is not None:
        out = out + bias.view(1, o, 1, 1)
    return out


class Conv2d(nn.Module):
    """A drop-in for ``nn.Conv2d`` (same parameters, same init) that runs :func:`conv2d`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        kh, kw = _pair(kernel_size, "kernel_size")
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # nn.Conv2d's initialisation (Kaiming-uniform with a=sqrt(5)).
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C_in, H, W] -> [B, C_out, H', W']
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def pool2d(x: torch.Tensor, kernel: IntPair, stride: IntPair | None = None, padding: IntPair = 0,
           mode: str = "max") -> torch.Tensor:
    """Max or average pooling via unfold: ``[B, C, H, W] -> [B, C, H_out, W_out]``.

    ``stride`` defaults to ``kernel`` (non-overlapping windows), as in ``nn.MaxPool2d``.
    Max pooling pads with -inf; average pooling pads with zeros and counts them
    (``count_include_pad=True``, torch's default).
    """
    if x.ndim != 4:
        raise ValueError(f"pool2d expects x of shape [B, C, H, W], got {tuple(x.shape)}")
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    k = _pair(kernel, "kernel")
    s = _pair(stride if stride is not None else kernel, "stride")
    p = _pair(padding, "padding")
    b, c, h, w = x.shape
    h_out, w_out = out_shape((h, w), k, s, p)
    if mode == "max" and any(p):
        x = F.pad(x, (p[1], p[1], p[0], p[0]), value=float("-inf"))
        p = (0, 0)
    cols = F.unfold(x, k, padding=p, stride=s).view(b, c, k[0] * k[1], h_out * w_out)  # [B, C, kh*kw, L]
    out = cols.amax(2) if mode == "max" else cols.mean(2)  # [B, C, L]
    return out.view(b, c, h_out, w_out)


# Classic hand-made kernels, [k, k]. Convolving an image with them is what a CNN's first layer learns.
KERNELS: dict[str, torch.Tensor] = {
    "identity": torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "box blur": torch.full((5, 5), 1 / 25),
    "gaussian blur": (lambda g: torch.outer(g, g) / g.sum() ** 2)(torch.tensor([1.0, 4, 6, 4, 1])),
    "sharpen": torch.tensor([[0.0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "sobel x": torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]),  # responds to vertical edges
    "sobel y": torch.tensor([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]]),  # responds to horizontal edges
    "laplacian": torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]),
}


def filter_image(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Apply one ``[k, k]`` kernel to every channel of ``image [C, H, W]`` ('same' size, zero padding).

    A depthwise convolution: ``groups = C``, so each channel is filtered on its own.
    Returns ``[C, H, W]``.
    """
    if image.ndim != 3:
        raise ValueError(f"filter_image expects an image [C, H, W], got {tuple(image.shape)}")
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be square [k, k] with odd k, got {tuple(kernel.shape)}")
    c, k = image.shape[0], kernel.shape[0]
    weight = kernel.to(image).expand(c, 1, k, k)  # [C, 1, k, k]
    return conv2d(image[None], weight, padding=k // 2, groups=c)[0]


def sobel_magnitude(gray: torch.Tensor) -> torch.Tensor:
    """Edge strength ``sqrt(gx^2 + gy^2)`` of a grayscale image ``[1, H, W]`` -> ``[1, H, W]``."""
    gx, gy = filter_image(gray, KERNELS["sobel x"]), filter_image(gray, KERNELS["sobel y"])
    return torch.sqrt(gx**2 + gy**2)


def receptive_field(layers: list[tuple[int, int, int]]) -> int:
    """Receptive field (in input pixels) of a stack of ``(kernel, stride, dilation)`` layers.

    ``r = 1 + sum_l (k_l - 1) * d_l * prod_{i<l} s_i``: each layer widens the field by its
    span minus one, measured in the input's pixels (the product of the earlier strides).
    """
    r, jump = 1, 1
    for k, s, d in layers:
        r += (k - 1) * d * jump
        jump *= s
    return r
