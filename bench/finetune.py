"""Fine-tuning benchmark (chapter 08): seconds per epoch and peak resident memory of each strategy
(ImageNet MobileNetV2 -> Fashion-MNIST at 1,000 labels, 64 px), with 1 and 2 torch threads, and the
speed-up of cached frozen features over recomputing them every epoch.

    python bench/finetune.py                  # ~3 minutes; prints a markdown table
    python bench/finetune.py --threads 1      # one thread count only
    python bench/finetune.py --labels 200 --size 32

Each cell runs in a fresh Python process (``mmcourse.finetune.sweep.measure``, uncached here), so that
its peak memory is its strategy's alone: one epoch after loading the model and the data, with a thread
sampling the resident memory every 5 ms. "training" is that peak minus the memory before the epoch.
For the linear probe and partial fine-tuning, "cached" is the epoch on the frozen part's stored output,
"recomputed" adds the frozen part's forward pass over the epoch's images (what caching saves). The
chapter's accuracy numbers are in notebooks/08_fine_tuning.ipynb.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmcourse.finetune import images as fi  # noqa: E402
from mmcourse.finetune import sweep  # noqa: E402

NAMES = {"scratch": "from scratch", "probe": "linear probe (cached features)",
         "partial": f"partial, last {sweep.PARTIAL_K} blocks (cached prefix)", "full": "full fine-tuning",
         "lora": f"LoRA r = {sweep.LORA_RANK} (peft)"}


def bench_finetune(threads: tuple[int, ...] = (1, 2), labels: int = 1000, size: int = 64) -> list[dict]:
    return [sweep.measure(s, labels=labels, size=size, threads=t, cache=False) for t in threads for s in fi.STRATEGIES]


def table(rows: list[dict]) -> str:
    lines = ["| strategy | threads | trainable | s / epoch | peak RSS | training RSS | cached vs recomputed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cache = ""
        if "cache_speedup" in r:
            cache = (f"{r['seconds_per_epoch']:.2f} s vs {r['seconds_per_epoch'] + r['frozen_part_seconds']:.2f} s "
                     f"(**{r['cache_speedup']:.1f}x**)")
        lines.append(f"| {NAMES[r['strategy']]} | {r['threads']} | {r['trainable']:,d} | {r['seconds_per_epoch']:.2f} | "
                     f"{r['peak_rss_mb']:.0f} MB | {r['training_rss_mb']:.0f} MB | {cache} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--labels", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    a = p.parse_args()
    rows = bench_finetune(tuple(a.threads), a.labels, a.size)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nFine-tuning, {date.today()}, {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{a.labels:,d} labels, {a.size} px, one epoch each, load average {load:.1f} at the end\n")
    print(table(rows))


if __name__ == "__main__":
    main()
