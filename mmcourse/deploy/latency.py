"""Latency of one call, as percentiles over repeated runs, warm-up excluded.

The first calls of a model are slow (memory allocation, kernel selection, lazy initialisation,
caches). :func:`measure` runs ``warmup`` calls and throws their times away, then times ``reps``
calls one by one with ``time.perf_counter``. Percentiles, not the mean: a service is judged by
its slow tail (p95), and one hiccup of the machine moves a mean but hardly a median.

Threads: :func:`threads` sets torch's intra-op threads for eager models; ONNX Runtime takes its
thread count when its session is made (:func:`mmcourse.deploy.export.session`). :func:`grid`
measures one model (eager, or an ONNX file) at every batch size and thread count. :func:`paired`
times several functions interleaved, for ratios that a busy machine does not skew
(:func:`paired_ratio` for two).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch


def measure(fn: Callable[[], object], reps: int = 100, warmup: int = 10,
            max_seconds: float | None = None) -> dict[str, float]:
    """Time ``fn()``: ``{"p50_ms", "p95_ms", "mean_ms", "n"}`` over ``reps`` calls after ``warmup``.

    ``max_seconds`` bounds the timed loop (at least 5 calls are always timed).
    """
    if reps < 1 or warmup < 0:
        raise ValueError(f"reps must be >= 1 and warmup >= 0, got reps={reps}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if max_seconds is not None and len(times) >= 5 and time.perf_counter() - start > max_seconds:
            break
    return _summary(times)


def _summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "n": len(ms)}


def paired(fns: Mapping[str, Callable[[], object]], reps: int = 100, warmup: int = 10) -> dict[str, dict[str, float]]:
    """Time several ``fns`` *interleaved* (a, b, a, b, ...): ``{name: {"p50_ms", "p95_ms", "mean_ms", "n"}}``.

    For a ratio between two models, measured on a machine that is doing other work: each round calls
    every function once, back to back, so a busy moment slows all of them alike and the ratio of the
    medians hardly moves, where two :func:`measure` calls one after the other can see different loads.
    """
    if reps < 1 or warmup < 0 or not fns:
        raise ValueError(f"need at least one function, reps >= 1 and warmup >= 0, got {len(fns)} functions, "
                         f"reps={reps}, warmup={warmup}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: _summary(ts) for name, ts in times.items()}


def paired_ratio(a: Callable[[], object], b: Callable[[], object], reps: int = 100, warmup: int = 10) -> float:
    """p50 of ``a()`` over p50 of ``b()``, the two timed interleaved (:func:`paired`) on one torch thread."""
    with threads(1):
        t = paired({"a": a, "b": b}, reps=reps, warmup=warmup)
    return t["a"]["p50_ms"] / t["b"]["p50_ms"]


@contextlib.contextmanager
def threads(n: int):
    """Run eager torch with ``n`` intra-op threads inside the block, then restore the old count."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def eager_fn(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> Callable[[], object]:
    """``fn()`` running ``model(*inputs)`` in inference mode (eval, no autograd)."""
    model.eval()

    def fn():
        with torch.inference_mode():
            return model(*inputs)

    return fn


def onnx_fn(sess, inputs: tuple[np.ndarray, ...]) -> Callable[[], object]:
    """``fn()`` running an ONNX Runtime session on positional float32 ``inputs``."""
    feed = {i.name: np.ascontiguousarray(x) for i, x in zip(sess.get_inputs(), inputs, strict=True)}
    return lambda: sess.run(None, feed)


def grid(target: torch.nn.Module | str | Path, inputs: Sequence[torch.Tensor], reps: Mapping[int, int],
         thread_counts: Sequence[int] = (1, 2), warmup: int = 10,
         max_seconds: float | None = None) -> dict[tuple[int, int], dict[str, float]]:
    """:func:`measure` of ``target`` at every batch size and thread count: ``{(batch, threads): result}``.

    ``target``: an eager model, or the path of an ONNX file (one session per thread count).
    ``inputs``: one tensor per model input, batch first; batch ``b`` runs on ``x[:b]`` of each.
    ``reps``: ``{batch size: timed calls}``, e.g. ``{1: 300, 32: 60}``.
    """
    from mmcourse.deploy.export import session

    short = {b: len(x) for b in reps for x in inputs if len(x) < b}
    if short:
        raise ValueError(f"inputs have fewer rows than the batch sizes {short} (batch: rows): pass at least "
                         f"{max(reps)} rows")
    out = {}
    for n in thread_counts:
        sess = session(target, threads=n) if isinstance(target, str | Path) else None
        for b, r in reps.items():
            xs = tuple(x[:b] for x in inputs)
            with threads(n):
                fn = onnx_fn(sess, tuple(x.numpy() for x in xs)) if sess is not None else eager_fn(target, xs)
                out[(b, n)] = measure(fn, reps=r, warmup=warmup, max_seconds=max_seconds)
    return out
