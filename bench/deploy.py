"""Deployment benchmark (chapter 12): size on disk and latency of each runtime, measured in one run.

    python bench/deploy.py              # ~1 minute; prints a markdown table
    python bench/deploy.py --reps 500   # more timed calls per cell

For each model: eager PyTorch, ONNX Runtime fp32 and ONNX Runtime int8 (dynamic), at batch 1 and 32,
with 1 and 2 threads; p50 over ``--reps`` calls after 20 warm-up calls (:mod:`mmcourse.deploy.latency`).
Latency does not depend on the weights' values, so the models are freshly initialised (BatchNorm
statistics set by a few forward passes): no data and no training needed. Accuracy is the chapter's
business (notebooks/12_deployment.ipynb). Run it on a quiet machine: the 2-thread column needs both cores.

A second table holds chapter 12's wall-clock targets as ratios, each pair of functions timed
interleaved on one thread (:func:`mmcourse.deploy.latency.paired`): ONNX Runtime over eager at batch 1
(>= 1.5), half the channels over the whole LeNet at batch 32 (>= 1.3), and 90 % magnitude-pruned
zeros over the dense LeNet (about 1: dense kernels multiply the zeros too).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmcourse.deploy.export import ConcatServing, export_onnx, file_kb, session  # noqa: E402
from mmcourse.deploy.latency import eager_fn, grid, onnx_fn, paired_ratio  # noqa: E402
from mmcourse.deploy.prune import magnitude_prune, prune_lenet  # noqa: E402
from mmcourse.deploy.quantize import quantize_dynamic_onnx, state_dict_kb  # noqa: E402
from mmcourse.fusion.zoo import build  # noqa: E402
from mmcourse.models.cnn import LeNet  # noqa: E402
from mmcourse.models.mlp import MLP  # noqa: E402


def models() -> dict[str, tuple[torch.nn.Module, tuple[torch.Tensor, ...], list[str]]]:
    torch.manual_seed(0)
    lenet = LeNet()
    lenet.train()
    with torch.no_grad():
        lenet(torch.rand(64, 1, 28, 28))
    img, aud = torch.rand(32, 1, 28, 28), torch.randn(32, 40, 101)
    return {
        "LeNet (215k)": (lenet.eval(), (img,), ["image"]),
        "LeNet, 50 % channels (105k)": (prune_lenet(lenet.eval(), 0.5).eval(), (img,), ["image"]),
        "MLP student 784-32-10 (25k)": (MLP(784, (32,), 10).eval(), (img,), ["image"]),
        "AV fusion, concat (ch. 06)": (ConcatServing(build("concat")).eval(), (img, aud), ["image", "audio"]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=200, help="timed calls per cell (batch 32: a quarter)")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mmcourse-bench-"))
    files = {}
    print(f"\nDeployment benchmark, {date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}\n")
    print("| model | runtime | size (KB) | b1 p50, 1 thread (ms) | b1 p95 (ms) | b32 p50, 1 thread (ms) "
          "| b1 p50, 2 threads (ms) | b32 p50, 2 threads (ms) | b1 speed-up vs eager |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (model, example, names) in models().items():
        fp32 = export_onnx(model, tuple(x[:4] for x in example), tmp / f"{len(os.listdir(tmp))}.onnx", names)
        int8 = quantize_dynamic_onnx(fp32, fp32.with_suffix(".int8.onnx"))
        eager_b1 = None
        for runtime, size, target in [("eager", state_dict_kb(model), model), ("ONNX Runtime fp32", file_kb(fp32), fp32),
                                      ("ONNX Runtime int8 dyn.", file_kb(int8), int8)]:
            cell = grid(target, example, {1: a.reps, 32: max(5, a.reps // 4)}, warmup=20)  # {(batch, threads): ...}
            eager_b1 = eager_b1 or cell[(1, 1)]["p50_ms"]
            print(f"| {name} | {runtime} | {size:.0f} | {cell[(1, 1)]['p50_ms']:.3f} | {cell[(1, 1)]['p95_ms']:.3f} | "
                  f"{cell[(32, 1)]['p50_ms']:.2f} | {cell[(1, 2)]['p50_ms']:.3f} | {cell[(32, 2)]['p50_ms']:.2f} | "
                  f"{eager_b1 / cell[(1, 1)]['p50_ms']:.1f}x |")
        files[name] = fp32
    ratios(files, a.reps)


def ratios(files: dict[str, Path], reps: int) -> None:
    """Chapter 12's wall-clock targets, as paired ratios."""
    ms = models()
    lenet, (img,), _ = ms["LeNet (215k)"]
    small = ms["LeNet, 50 % channels (105k)"][0]
    rows = [(f"ONNX Runtime over eager, batch 1: {name}",
             paired_ratio(eager_fn(model, tuple(x[:1] for x in ex)), onnx_fn(session(files[name]), tuple(x[:1].numpy() for x in ex)),
                   reps, warmup=20), ">= 1.5") for name, (model, ex, _) in ms.items()]
    rows.append(("50 % channels over the whole LeNet, batch 32, ONNX Runtime",
                 paired_ratio(onnx_fn(session(files["LeNet (215k)"]), (img.numpy(),)),
                       onnx_fn(session(files["LeNet, 50 % channels (105k)"]), (img.numpy(),)), max(5, reps // 4), warmup=20), ">= 1.3"))
    rows.append(("50 % channels over the whole LeNet, batch 32, eager",
                 paired_ratio(eager_fn(lenet, (img,)), eager_fn(small, (img,)), max(5, reps // 4), warmup=20), "reported"))
    rows.append(("90 % magnitude-pruned zeros over dense, batch 32, eager",
                 paired_ratio(eager_fn(magnitude_prune(lenet, 0.9).eval(), (img,)), eager_fn(lenet, (img,)), max(5, reps // 4), warmup=20),
                 "> 0.7 (not faster)"))
    print("\n| ratio (paired, 1 thread) | measured | target |\n| --- | --- | --- |")
    for name, value, target in rows:
        print(f"| {name} | {value:.2f} | {target} |")


if __name__ == "__main__":
    main()
