"""Optimisers written out by hand, racing on 2-D loss surfaces.

``SGD`` (with optional momentum) and ``Adam`` follow ``torch.optim.SGD`` / ``torch.optim.Adam``
update for update (the tests check it), in a dozen lines each. ``trajectory`` runs one of them
on a :class:`Surface` from its start point and returns the path ``[steps + 1, 2]``, which
``mmcourse.viz.basics.plot_trajectories`` draws over the surface's contours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

# ---------------------------------------------------------------------------------------------
# Hand-written optimisers: same constructor arguments and step() as torch.optim's
# ---------------------------------------------------------------------------------------------


class _Optimizer:
    def __init__(self, params: Iterable[torch.Tensor], lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimiser got no parameters")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.lr = lr
        self.t = 0  # steps taken

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


class SGD(_Optimizer):
    """``v = momentum * v + g`` (v = g on the first step); ``p -= lr * v``. momentum=0: plain SGD."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0):
        super().__init__(params, lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.velocity = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        for p, v in zip(self.params, self.velocity, strict=True):
            if p.grad is None:
                continue
            g = p.grad
            if self.momentum:
                v.copy_(g if self.t == 1 else self.momentum * v + g)
                g = v
            p -= self.lr * g


class Adam(_Optimizer):
    """``m, v`` = running means of g and g^2; ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` (bias-corrected)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        self.betas, self.eps = betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            g = p.grad
            m.mul_(b1).add_((1 - b1) * g)  # first moment
            v.mul_(b2).add_((1 - b2) * g * g)  # second moment
            m_hat = m / (1 - b1**self.t)
            v_hat = v / (1 - b2**self.t)
            p -= self.lr * m_hat / (v_hat.sqrt() + self.eps)


OPTIMIZERS: dict[str, Callable[..., _Optimizer]] = {
    "sgd": lambda params, lr: SGD(params, lr),
    "momentum": lambda params, lr: SGD(params, lr, momentum=0.9),
    "adam": lambda params, lr: Adam(params, lr),
}


def make_optimizer(name: str, params: Iterable[torch.Tensor], lr: float) -> _Optimizer:
    """``"sgd"``, ``"momentum"`` (SGD, momentum 0.9) or ``"adam"`` (betas 0.9, 0.999)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name](params, lr)


# ---------------------------------------------------------------------------------------------
# 2-D loss surfaces
# ---------------------------------------------------------------------------------------------


def rosenbrock(xy: torch.Tensor) -> torch.Tensor:
    """``(1 - x)^2 + 100 (y - x^2)^2``: a curved, flat-bottomed valley; minimum 0 at (1, 1). ``[..., 2] -> [...]``."""
    x, y = xy[..., 0], xy[..., 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosenbrock_grad(xy: torch.Tensor) -> torch.Tensor:
    """The gradient of :func:`rosenbrock`, by hand. ``[..., 2] -> [..., 2]``."""
    x, y = xy[..., 0], xy[..., 1]
    return torch.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)], dim=-1)


_C, _S = math.cos(math.pi / 6), math.sin(math.pi / 6)
_RAVINE_CURV = 50.0  # curvature across the valley (along it: 1)


def ravine(xy: torch.Tensor) -> torch.Tensor:
    """``0.5 (x^2 + 50 y^2)``, rotated by 30 degrees: a straight, narrow valley (condition number 50);
    minimum 0 at (0, 0). ``[..., 2] -> [...]``."""
    u = _C * xy[..., 0] + _S * xy[..., 1]  # along the valley
    w = -_S * xy[..., 0] + _C * xy[..., 1]  # across it
    return 0.5 * (u**2 + _RAVINE_CURV * w**2)


def ravine_grad(xy: torch.Tensor) -> torch.Tensor:
    """The gradient of :func:`ravine`, by hand. ``[..., 2] -> [..., 2]``."""
    u = _C * xy[..., 0] + _S * xy[..., 1]
    w = -_S * xy[..., 0] + _C * xy[..., 1]
    du, dw = u, _RAVINE_CURV * w
    return torch.stack([_C * du - _S * dw, _S * du + _C * dw], dim=-1)


@dataclass(frozen=True)
class Surface:
    """A 2-D loss ``fn([..., 2]) -> [...]`` with its minimum, a start point and a plotting window.

    ``grad([..., 2]) -> [..., 2]``, when given, is the gradient written by hand: trajectories use it
    instead of autograd (same numbers, several times faster for a single point).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    minimum: tuple[float, float]
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    grad: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __call__(self, xy: torch.Tensor) -> torch.Tensor:
        if xy.shape[-1:] != (2,):
            raise ValueError(f"a 2-D surface takes points [..., 2], got shape {tuple(xy.shape)}")
        return self.fn(xy)

    def grid(self, n: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``X, Y, Z`` each ``[n, n]`` over the plotting window (for contour plots)."""
        xs = torch.linspace(*self.xlim, n, dtype=torch.float64)
        ys = torch.linspace(*self.ylim, n, dtype=torch.float64)
        X, Y = torch.meshgrid(xs, ys, indexing="xy")
        return X, Y, self(torch.stack([X, Y], dim=-1))


SURFACES: dict[str, Surface] = {
    "rosenbrock": Surface("rosenbrock", rosenbrock, (1.0, 1.0), (-1.2, 1.0), (-2.0, 2.0), (-1.0, 3.0),
                          rosenbrock_grad),
    "ravine": Surface("ravine", ravine, (0.0, 0.0), (-2.5, 0.5), (-3.0, 3.0), (-2.0, 2.0), ravine_grad),
}


def get_surface(surface: str | Surface) -> Surface:
    if isinstance(surface, Surface):
        return surface
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {list(SURFACES)}, got {surface!r}")
    return SURFACES[surface]


def trajectory(surface: str | Surface, optimizer: str, lr: float, steps: int = 300,
               start: tuple[float, float] | None = None, blowup: float = 1e6) -> torch.Tensor:
    """Run ``optimizer`` from ``start`` (default: the surface's) for ``steps`` steps.

    Returns the points visited ``[n, 2]`` (float64), ``n = steps + 1`` unless the run diverged
    (a coordinate beyond ``blowup`` or not finite), in which case it stops there.
    """
    s = get_surface(surface)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    p = torch.tensor(start or s.start, dtype=torch.float64, requires_grad=True)  # [2]
    opt = make_optimizer(optimizer, [p], lr)
    path = [p.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        if s.grad is not None:
            p.grad = s.grad(p.detach())
        else:
            s(p).backward()
        opt.step()
        q = p.detach().clone()
        if not torch.isfinite(q).all() or q.abs().max() > blowup:
            break
        path.append(q)
    return torch.stack(path)  # [n, 2]


def diverged(path: torch.Tensor, steps: int) -> bool:
    """True when ``trajectory`` stopped before ``steps`` steps (it blew up)."""
    return len(path) < steps + 1


def steps_to_reach(path: torch.Tensor, point: tuple[float, float], radius: float) -> int | None:
    """The first step at which ``path [n, 2]`` is within ``radius`` of ``point`` (None: never)."""
    if path.ndim != 2 or path.shape[1] != 2:
        raise ValueError(f"path must be [n, 2], got shape {tuple(path.shape)}")
    d = (path - torch.tensor(point, dtype=path.dtype)).norm(dim=1)  # [n]
    hit = (d <= radius).nonzero()
    return int(hit[0]) if len(hit) else None
