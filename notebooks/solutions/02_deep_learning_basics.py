"""Solutions to the exercises of chapter 02 (deep-learning basics).

Each ``exercise_N()`` computes its answer, asserts it and returns it; ``tests/test_solutions_02.py``
runs them all.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mmcourse.models.mlp import MLP
from mmcourse.optim_demo import SGD, SURFACES


class RMSprop:
    """``v = alpha v + (1 - alpha) g^2``; ``p -= lr g / (sqrt(v) + eps)``, as ``torch.optim.RMSprop``."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8):
        self.params, self.lr, self.alpha, self.eps = list(params), lr, alpha, eps
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p, v in zip(self.params, self.v, strict=True):
            v.mul_(self.alpha).add_((1 - self.alpha) * p.grad**2)
            p -= self.lr * p.grad / (v.sqrt() + self.eps)


def _twenty_steps(make_opt) -> list[torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    opt, g = make_opt(list(net.parameters())), torch.Generator().manual_seed(1)
    for _ in range(20):
        x, y = torch.randn(16, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return [p.detach() for p in net.parameters()]


def exercise_1() -> float:
    """RMSProp by hand == torch.optim.RMSprop over 20 steps. Returns the largest difference."""
    ours = _twenty_steps(lambda ps: RMSprop(ps, lr=0.01))
    theirs = _twenty_steps(lambda ps: torch.optim.RMSprop(ps, lr=0.01))
    err = max(float((a - b).abs().max()) for a, b in zip(ours, theirs, strict=True))
    assert err < 1e-10, err
    return err


def relu_manual_gradients(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Backprop through ``x [B, D] -> relu(x W1^T + b1) [B, H] -> logits [B, K]`` with mean cross-entropy."""
    z1 = x @ p["W1"].T + p["b1"]  # [B, H]
    h = z1.clamp_min(0)  # [B, H]
    z2 = h @ p["W2"].T + p["b2"]  # [B, K]
    dz2 = (z2.softmax(1) - F.one_hot(y, z2.shape[1])) / len(x)  # [B, K]
    dh = dz2 @ p["W2"]  # [B, H]
    dz1 = dh * (z1 > 0)  # ReLU'(z) = 1 where z > 0, else 0
    return {"W1": dz1.T @ x, "b1": dz1.sum(0), "W2": dz2.T @ h, "b2": dz2.sum(0)}


def exercise_2() -> float:
    """ReLU backprop by hand == autograd on MLP(4, (3,), 2, activation="relu"). Returns the largest difference."""
    torch.manual_seed(0)
    m = MLP(4, (3,), 2, activation="relu").double()
    l1, l2 = (layer for layer in m.net if isinstance(layer, nn.Linear))
    p = {"W1": l1.weight.detach(), "b1": l1.bias.detach(), "W2": l2.weight.detach(), "b2": l2.bias.detach()}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randint(0, 2, (8,), generator=g)
    F.cross_entropy(m(x), y).backward()
    auto = {"W1": l1.weight.grad, "b1": l1.bias.grad, "W2": l2.weight.grad, "b2": l2.bias.grad}
    ours = relu_manual_gradients(p, x, y)
    err = max(float((ours[k] - auto[k]).abs().max()) for k in ours)
    assert err < 1e-6, err
    assert any(float(ours[k].abs().max()) > 0 for k in ours)  # not trivially zero
    return err


def _largest_stable_lr(momentum: float, lo: float = 1e-3, hi: float = 1.0, steps: int = 500, iters: int = 14) -> float:
    """Bisection for the largest lr at which SGD (with ``momentum``) does not diverge on the ravine."""
    s = SURFACES["ravine"]

    def blows_up(lr: float) -> bool:
        p = torch.tensor(s.start, dtype=torch.float64)
        opt = SGD([p], lr=lr, momentum=momentum)
        for _ in range(steps):
            p.grad = s.grad(p)
            opt.step()
            if not torch.isfinite(p).all() or p.abs().max() > 1e6:
                return True
        return False

    assert not blows_up(lo) and blows_up(hi)
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if blows_up(mid) else (mid, hi)
    return lo


def exercise_3() -> tuple[float, float]:
    """SGD's and momentum's largest stable lr on the ravine vs theory 2/50 and 2(1 + 0.9)/50."""
    sgd, mom = _largest_stable_lr(0.0), _largest_stable_lr(0.9)
    assert abs(sgd - 2 / 50) / (2 / 50) < 0.05, sgd
    assert abs(mom - 2 * 1.9 / 50) / (2 * 1.9 / 50) < 0.05, mom
    return sgd, mom


if __name__ == "__main__":
    print(exercise_1(), exercise_2(), exercise_3())
