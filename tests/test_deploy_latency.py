"""The latency helper: warm-up calls are excluded, percentiles are right, threads are restored."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from mmcourse.deploy.latency import eager_fn, grid, measure, paired, paired_ratio, threads


class _SlowStart:
    """The first ``slow`` calls sleep ``seconds``; later calls return at once."""

    def __init__(self, slow: int, seconds: float):
        self.calls, self.slow, self.seconds = 0, slow, seconds

    def __call__(self):
        self.calls += 1
        if self.calls <= self.slow:
            time.sleep(self.seconds)


def test_warmup_calls_are_not_timed():
    fn = _SlowStart(slow=5, seconds=0.05)
    m = measure(fn, reps=20, warmup=5)
    assert fn.calls == 25 and m["n"] == 20
    assert m["p95_ms"] < 5 and m["mean_ms"] < 5  # none of the 50 ms warm-up calls is in there


def test_without_warmup_the_slow_calls_show():
    fn = _SlowStart(slow=5, seconds=0.05)
    m = measure(fn, reps=20, warmup=0)
    assert m["p95_ms"] > 40 and m["mean_ms"] > 10  # 5 of 20 calls took 50 ms
    assert m["p50_ms"] < 5


def test_percentiles_of_known_durations():
    durations = iter([0.001] * 10 + [0.02] * 10)
    m = measure(lambda: time.sleep(next(durations)), reps=20, warmup=0)
    assert 0.9 < m["p50_ms"] < 15  # halfway between the two groups, by numpy's interpolation
    assert m["p95_ms"] > 19


class _Machine:
    """A machine that becomes 4x slower after ``switch`` calls of any function (another job starts)."""

    def __init__(self, switch: int):
        self.calls, self.switch, self.log = 0, switch, []

    def job(self, name: str, ms: float):
        def fn():
            self.calls += 1
            self.log.append(name)
            time.sleep(ms / 1000 * (4 if self.calls > self.switch else 1))

        return fn


def test_paired_interleaves_and_a_load_change_does_not_skew_the_ratio():
    m = _Machine(switch=40)  # a: 2 ms, b: 4 ms; the machine slows down half-way through
    one_by_one = {"a": measure(m.job("a", 2), reps=40, warmup=0), "b": measure(m.job("b", 4), reps=40, warmup=0)}
    assert one_by_one["b"]["p50_ms"] / one_by_one["a"]["p50_ms"] > 5  # b saw only the slow machine: 16 / 2
    m = _Machine(switch=40)
    both = paired({"a": m.job("a", 2), "b": m.job("b", 4)}, reps=40, warmup=2)
    assert m.log[:6] == ["a", "b"] * 3 and both["a"]["n"] == both["b"]["n"] == 40
    assert 1.5 < both["b"]["p50_ms"] / both["a"]["p50_ms"] < 3  # the true ratio, 2
    with pytest.raises(ValueError, match="at least one function"):
        paired({})
    m = _Machine(switch=30)
    assert 0.33 < paired_ratio(m.job("a", 2), m.job("b", 4), reps=30, warmup=2) < 0.67  # 2 ms over 4 ms


def test_max_seconds_bounds_the_loop():
    m = measure(lambda: time.sleep(0.01), reps=1000, warmup=0, max_seconds=0.1)
    assert 5 <= m["n"] < 30


def test_bad_arguments():
    with pytest.raises(ValueError, match="reps"):
        measure(lambda: None, reps=0)


def test_threads_context_restores_and_eager_fn_runs():
    before = torch.get_num_threads()
    with threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    lin = torch.nn.Linear(3, 2)
    out = eager_fn(lin, (torch.ones(1, 3),))()
    assert not out.requires_grad and np.allclose(out.numpy(), lin(torch.ones(1, 3)).detach().numpy())


def test_grid_times_every_batch_and_thread_count_on_a_prefix_of_the_inputs(tmp_path):
    pytest.importorskip("onnxruntime")
    from mmcourse.deploy.export import export_onnx

    lin = torch.nn.Linear(3, 2)
    x = torch.randn(8, 3)
    before = torch.get_num_threads()
    out = grid(lin, (x,), {1: 7, 4: 5}, thread_counts=(1, 2), warmup=2)
    assert list(out) == [(1, 1), (4, 1), (1, 2), (4, 2)] and [m["n"] for m in out.values()] == [7, 5, 7, 5]
    assert torch.get_num_threads() == before
    path = export_onnx(lin, (x[:4],), tmp_path / "lin.onnx", ["x"])
    assert set(grid(path, (x,), {2: 3}, thread_counts=(1,), warmup=0)) == {(2, 1)}
    with pytest.raises(ValueError, match="fewer rows"):
        grid(lin, (x,), {32: 3})
