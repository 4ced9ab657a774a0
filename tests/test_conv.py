"""Convolution and pooling from scratch (unfold) against torch; output-shape arithmetic."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.models.conv import (
    KERNELS,
    Conv2d,
    conv2d,
    filter_image,
    out_shape,
    out_size,
    pool2d,
    receptive_field,
    sobel_magnitude,
)

# (C_in, C_out, kernel, stride, padding, dilation, groups, H, W)
CONFIGS = [
    (1, 4, 3, 1, 0, 1, 1, 9, 9),
    (3, 8, 5, 2, 2, 1, 1, 17, 13),
    (4, 6, (3, 2), (2, 1), (1, 0), 1, 2, 12, 11),
    (2, 3, 3, 1, 2, 2, 1, 10, 10),
    (6, 6, 3, 3, 1, (2, 1), 6, 15, 16),  # depthwise
    (8, 4, 1, 1, 0, 1, 4, 5, 7),
]


@pytest.mark.parametrize("c_in,c_out,k,s,p,d,g,h,w", CONFIGS)
def test_conv2d_equals_torch(c_in, c_out, k, s, p, d, g, h, w):
    torch.manual_seed(0)
    ref = nn.Conv2d(c_in, c_out, k, s, p, d, g)
    x = torch.randn(2, c_in, h, w)
    ours = conv2d(x, ref.weight, ref.bias, s, p, d, g)
    expected = ref(x)
    assert ours.shape == expected.shape
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_conv2d_module_matches_torch_init_and_gradients():
    torch.manual_seed(1)
    ours = Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    torch.manual_seed(1)
    ref = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    torch.testing.assert_close(ours.weight, ref.weight)  # same initialisation, same RNG draws
    torch.testing.assert_close(ours.bias, ref.bias)
    x = torch.randn(3, 4, 10, 10)
    ours(x).square().sum().backward()
    ref(x).square().sum().backward()
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("size,k,s,p,d", [(28, 5, 1, 2, 1), (28, 3, 2, 1, 1), (32, 3, 1, 0, 2),
                                          (7, 7, 1, 0, 1), (101, 4, 3, 1, 3), (10, 2, 2, 0, 1)])
def test_out_size_formula_matches_torch(size, k, s, p, d):
    y = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
    assert out_size(size, k, s, p, d) == y.shape[-1]
    assert out_shape((size, size + 3), k, s, p, d) == (y.shape[-2], out_size(size + 3, k, s, p, d))


def test_out_size_hand_values_and_errors():
    assert out_size(28, 5) == 24  # valid convolution shrinks by k - 1
    assert out_size(28, 5, padding=2) == 28  # 'same'
    assert out_size(28, 2, stride=2) == 14  # pooling halves
    assert out_size(32, 3, dilation=2) == 28  # dilation 2: a 3x3 kernel spans 5 pixels
    with pytest.raises(ValueError, match="larger than the padded input"):
        out_size(3, 5)
    with pytest.raises(ValueError, match="stride"):
        out_size(10, 3, stride=0)


@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0))])
def test_pool2d_equals_torch(k, s, p):
    x = torch.randn(2, 3, 11, 12, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(pool2d(x, k, s, p, "max"), F.max_pool2d(x, k, s, p))
    torch.testing.assert_close(pool2d(x, k, s, p, "avg"), F.avg_pool2d(x, k, s, p), atol=1e-6, rtol=1e-5)


def test_bad_input_raises_clear_errors():
    w = torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        conv2d(torch.randn(3, 8, 8), w)
    with pytest.raises(ValueError, match="input channels"):
        conv2d(torch.randn(1, 2, 8, 8), w)
    with pytest.raises(ValueError, match="groups"):
        conv2d(torch.randn(1, 3, 8, 8), w, groups=2)
    with pytest.raises(ValueError, match="bias"):
        conv2d(torch.randn(1, 3, 8, 8), w, bias=torch.zeros(5))
    with pytest.raises(ValueError, match="mode"):
        pool2d(torch.randn(1, 1, 4, 4), 2, mode="median")
    with pytest.raises(ValueError, match="odd"):
        filter_image(torch.randn(1, 8, 8), torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        filter_image(torch.randn(8, 8), KERNELS["sobel x"])


def test_classic_kernels_on_hand_made_images():
    # A vertical step edge: Sobel-x fires along it (value 4 = 1+2+1 per unit step), Sobel-y is zero.
    img = torch.zeros(1, 7, 7)
    img[:, :, 4:] = 1.0
    gx, gy = filter_image(img, KERNELS["sobel x"]), filter_image(img, KERNELS["sobel y"])
    assert torch.allclose(gx[0, 1:-1, 3:5], torch.full((5, 2), 4.0))
    assert gx[0, 1:-1, :2].abs().max() == 0 and gy[0, 1:-1, 1:-1].abs().max() == 0
    # Blurs preserve a constant image away from the borders; identity is the identity.
    flat = torch.full((3, 9, 9), 0.5)
    assert torch.allclose(filter_image(flat, KERNELS["gaussian blur"])[:, 2:-2, 2:-2], flat[:, 2:-2, 2:-2])
    x = torch.rand(3, 6, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(filter_image(x, KERNELS["identity"]), x)
    assert torch.allclose(KERNELS["gaussian blur"].sum(), torch.tensor(1.0))
    # Edge magnitude equals |gx| on a pure vertical edge (away from the zero-padded borders).
    torch.testing.assert_close(sobel_magnitude(img)[:, 1:-1], gx.abs()[:, 1:-1])


def test_receptive_field_formula_and_gradient():
    assert receptive_field([(3, 1, 1)] * 3) == 7  # three 3x3 convs see as far as one 7x7
    assert receptive_field([(5, 1, 1), (2, 2, 1), (5, 1, 1), (2, 2, 1)]) == 16  # LeNet's two conv-pool
    assert receptive_field([(3, 1, 2)]) == 5
    # The gradient of one output pixel is non-zero exactly on its receptive field.
    x = torch.randn(1, 1, 21, 21, requires_grad=True)
    y = F.conv2d(F.conv2d(x, torch.ones(1, 1, 3, 3), padding=1), torch.ones(1, 1, 3, 3), padding=2, dilation=2)
    y[0, 0, 10, 10].backward()
    rows = (x.grad[0, 0].abs().sum(1) > 0).sum().item()
    assert rows == receptive_field([(3, 1, 1), (3, 1, 2)]) == 7
