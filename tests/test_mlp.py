"""The MLP (shapes, a seeded reference value, bad input) and backprop by hand == autograd."""

import pytest
import torch
from torch.nn import functional as F

from mmcourse.models.mlp import MLP, autograd_gradients, manual_gradients, tiny_params


def tiny(seed: int = 0, d: int = 5, h: int = 4, k: int = 3) -> MLP:
    torch.manual_seed(seed)
    return MLP(d, (h,), k, activation="tanh").double()


def test_output_shape_images_and_flat():
    m = MLP(784, (64, 32), 10)
    assert m(torch.rand(7, 1, 28, 28)).shape == (7, 10)
    assert m(torch.rand(3, 784)).shape == (3, 10)
    assert MLP(6, (), 2)(torch.rand(4, 6)).shape == (4, 2)  # logistic regression


def test_seeded_reference_value():
    torch.manual_seed(0)
    m = MLP(784, (32,), 10)
    out = m(torch.linspace(0, 1, 2 * 784).reshape(2, 1, 28, 28))  # [2, 10]
    assert out.sum().item() == pytest.approx(-0.07977477, abs=1e-5)
    torch.testing.assert_close(out[0, :3], torch.tensor([-0.0216647, 0.1204826, 0.0448540]), atol=1e-5, rtol=0)


def test_forward_is_the_formula():
    m = tiny()
    p = tiny_params(m)
    x = torch.randn(6, 5, dtype=torch.float64)
    by_hand = torch.tanh(x @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]  # [6, 3]
    torch.testing.assert_close(m(x), by_hand, atol=1e-12, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_manual_backprop_equals_autograd_cross_entropy(seed):
    m = tiny(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (8,), generator=g)
    loss_m, grads_m = manual_gradients(tiny_params(m), x, y, "ce")
    loss_a, grads_a = autograd_gradients(m, x, y, "ce")
    assert loss_m == pytest.approx(loss_a, abs=1e-12)
    assert loss_a == pytest.approx(float(F.cross_entropy(m(x), y).detach()), abs=1e-12)
    for k in ("W1", "b1", "W2", "b2"):
        assert grads_m[k].shape == grads_a[k].shape
        torch.testing.assert_close(grads_m[k], grads_a[k], atol=1e-12, rtol=0)


def test_manual_backprop_equals_autograd_mse_float32():
    torch.manual_seed(3)
    m = MLP(4, (6,), 2, activation="tanh")
    x, y = torch.randn(10, 4), torch.randn(10, 2)
    loss_m, grads_m = manual_gradients(tiny_params(m), x, y, "mse")
    loss_a, grads_a = autograd_gradients(m, x, y, "mse")
    assert abs(loss_m - loss_a) < 1e-6
    for k in grads_m:
        assert (grads_m[k] - grads_a[k]).abs().max() < 1e-6


def test_manual_gradient_descent_lowers_the_loss():
    m = tiny(4)
    p = {k: v.clone() for k, v in tiny_params(m).items()}
    x = torch.randn(32, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()  # 3 classes from two features
    first, _ = manual_gradients(p, x, y)
    for _ in range(200):
        value, g = manual_gradients(p, x, y)
        p = {k: p[k] - 0.5 * g[k] for k in p}
    assert value < 0.5 * first


def test_dropout_only_in_training():
    torch.manual_seed(0)
    m = MLP(20, (64,), 3, dropout=0.5)
    x = torch.randn(4, 20)
    m.train()
    assert not torch.equal(m(x), m(x))
    m.eval()
    assert torch.equal(m(x), m(x))


def test_bad_input():
    m = MLP(784, (16,), 10)
    with pytest.raises(ValueError, match="784 features"):
        m(torch.rand(2, 1, 27, 28))
    with pytest.raises(ValueError, match="batch"):
        m(torch.rand(784))
    with pytest.raises(ValueError, match="activation"):
        MLP(4, (3,), 2, activation="swish")
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, (3,), 2, dropout=1.0)
    with pytest.raises(ValueError, match="positive"):
        MLP(4, (0,), 2)
    with pytest.raises(ValueError, match="one hidden layer"):
        tiny_params(MLP(4, (3, 3), 2, activation="tanh"))
    with pytest.raises(ValueError, match="one hidden layer"):
        tiny_params(MLP(4, (3,), 2, activation="relu"))
    p = tiny_params(tiny())
    x, y = torch.randn(2, 5, dtype=torch.float64), torch.tensor([0, 2])
    with pytest.raises(ValueError, match="missing"):
        manual_gradients({k: v for k, v in p.items() if k != "b2"}, x, y)
    with pytest.raises(ValueError, match=r"x must be \[B, 5\]"):
        manual_gradients(p, torch.randn(2, 4, dtype=torch.float64), y)
    with pytest.raises(ValueError, match="integer labels"):
        manual_gradients(p, x, y.double())
    with pytest.raises(ValueError, match="MSE needs"):
        manual_gradients(p, x, torch.randn(2, 4, dtype=torch.float64), "mse")
    with pytest.raises(ValueError, match="loss must be"):
        manual_gradients(p, x, y, "hinge")
    with pytest.raises(ValueError, match="inconsistent"):
        manual_gradients({**p, "b1": torch.zeros(7, dtype=torch.float64)}, x, y)
