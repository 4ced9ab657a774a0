"""Hand-written SGD / momentum / Adam == torch.optim, the 2-D surfaces, trajectories."""

import pytest
import torch
from torch import nn

from mmcourse.optim_demo import (
    SGD,
    SURFACES,
    Adam,
    diverged,
    get_surface,
    make_optimizer,
    steps_to_reach,
    trajectory,
)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def _run(model: nn.Module, opt, steps: int = 15) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 4, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (16,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda p: SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
        (lambda p: SGD(p, lr=0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
        (lambda p: Adam(p, lr=1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
        (lambda p: Adam(p, lr=3e-3, betas=(0.8, 0.99), eps=1e-6),
         lambda p: torch.optim.Adam(p, lr=3e-3, betas=(0.8, 0.99), eps=1e-6)),
    ],
)
def test_hand_optimisers_match_torch(ours, theirs):
    a, b = _model(), _model()
    start = [p.detach().clone() for p in a.parameters()]
    _run(a, ours(list(a.parameters())))
    _run(b, theirs(b.parameters()))
    for pa, pb, p0 in zip(a.parameters(), b.parameters(), start, strict=True):
        assert (pa - p0).abs().max() > 1e-3  # they did move
        torch.testing.assert_close(pa, pb, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_trajectory_matches_torch_optim_on_a_surface(name):
    s, lr, steps = SURFACES["rosenbrock"], 1e-3, 50
    ours = trajectory(s, name, lr, steps)
    p = torch.tensor(s.start, dtype=torch.float64, requires_grad=True)
    opt = {"sgd": lambda: torch.optim.SGD([p], lr), "momentum": lambda: torch.optim.SGD([p], lr, momentum=0.9),
           "adam": lambda: torch.optim.Adam([p], lr)}[name]()
    path = [p.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        s(p).backward()
        opt.step()
        path.append(p.detach().clone())
    assert ours.shape == (steps + 1, 2)
    torch.testing.assert_close(ours, torch.stack(path), atol=1e-10, rtol=0)


@pytest.mark.parametrize("name", list(SURFACES))
def test_surface_gradients_and_minimum(name):
    s = SURFACES[name]
    xy = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    s(xy).sum().backward()
    torch.testing.assert_close(s.grad(xy.detach()), xy.grad, atol=1e-9, rtol=1e-9)
    m = torch.tensor(s.minimum, dtype=torch.float64)
    assert float(s(m)) == 0.0
    assert s.grad(m).abs().max() == 0.0
    X, Y, Z = s.grid(50)
    assert X.shape == Y.shape == Z.shape == (50, 50) and Z.min() >= 0


def test_sgd_stability_limit_on_the_ravine():
    # The ravine's largest curvature is 50, so gradient descent is stable only for lr < 2 / 50 = 0.04.
    assert not diverged(trajectory("ravine", "sgd", 0.039, 500), 500)
    assert diverged(trajectory("ravine", "sgd", 0.041, 500), 500)
    # Adam's steps are about lr in size whatever the curvature: it does not blow up at 0.3
    path = trajectory("ravine", "adam", 0.3, 500)
    assert not diverged(path, 500) and steps_to_reach(path, (0.0, 0.0), 0.1) is not None


def test_momentum_beats_sgd_in_the_ravine():
    sgd = steps_to_reach(trajectory("ravine", "sgd", 0.01, 500), (0.0, 0.0), 0.1)
    mom = steps_to_reach(trajectory("ravine", "momentum", 0.01, 500), (0.0, 0.0), 0.1)
    assert sgd is not None and mom is not None and mom * 5 < sgd


def test_steps_to_reach():
    path = torch.tensor([[3.0, 0.0], [2.0, 0.0], [0.5, 0.0], [0.05, 0.0]])
    assert steps_to_reach(path, (0.0, 0.0), 0.6) == 2
    assert steps_to_reach(path, (0.0, 0.0), 0.01) is None


def test_bad_input():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="optimizer must be"):
        make_optimizer("lbfgs", p, 0.1)
    with pytest.raises(ValueError, match="lr"):
        SGD(p, lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        SGD(p, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="betas"):
        Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="no parameters"):
        Adam([])
    with pytest.raises(ValueError, match="surface must be"):
        get_surface("himmelblau")
    with pytest.raises(ValueError, match=r"points \[..., 2\]"):
        SURFACES["ravine"](torch.zeros(4, 3))
    with pytest.raises(ValueError, match="steps"):
        trajectory("ravine", "sgd", 0.1, steps=-1)
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        steps_to_reach(torch.zeros(5), (0.0, 0.0), 0.1)


def test_race_panel_draws_and_reports():
    import ipywidgets as W
    from matplotlib.figure import Figure

    from mmcourse.viz import Panel
    from mmcourse.viz.basics import draw_race, plot_confusion

    panel = Panel(draw_race, surface=W.Dropdown(options=["ravine", "rosenbrock"], value="ravine"),
                  optimizer=W.Dropdown(options=["all", "sgd", "momentum", "adam"], value="all"),
                  lr=W.FloatLogSlider(value=0.01, base=10, min=-4, max=0), steps=W.IntSlider(value=100, min=10, max=500))
    assert panel.image.value[:4] == b"\x89PNG"
    # ravine at lr 0.01: momentum arrives (23 steps), SGD does not within 100 steps
    assert "<b>momentum</b>: reached the minimum in 23 steps" in panel.caption.value
    assert "<b>sgd</b>: loss" in panel.caption.value
    panel.set(optimizer="sgd", lr=0.1)
    assert panel.caption.value == "<b>sgd</b>: diverged"
    with pytest.raises(ValueError, match=r"\[K, K\]"):
        plot_confusion(Figure().subplots(), torch.zeros(3, 4))
