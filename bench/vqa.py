"""Sort-of-CLEVR benchmark (chapter 10): training time per epoch of the Relation Network and the CNN+MLP,
and how the RN's cost grows with the CNN grid (its g runs on every one of the N^2 pairs of cells).

    python bench/vqa.py                 # ~1 minute on one thread; prints a markdown table
    python bench/vqa.py --scenes 200    # scenes timed per cell of the table
    python bench/vqa.py --spread        # the chapter's section 4 with seeds 0, 1, 2 (long: ~15 min)

Each cell trains a fresh model for one pass over ``--scenes`` scenes (36 questions each, batches of 8
scenes as in the chapter) after one warm-up batch, and reports seconds per 1,000 scenes (36,000
questions); the chapter trains on its own number of scenes (see its set-up cell). The grid is the
image side / 8 (three stride-2 convolutions): 24, 32, 40, 48 pixels give 3x3 ... 6x6 cells. Accuracy is
the chapter's business (notebooks/10_project_vqa.ipynb).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmcourse.data.sortofclevr import SIZE, sort_of_clevr  # noqa: E402
from mmcourse.models.relation import CNNMLP, RelationNetwork  # noqa: E402
from mmcourse.models.vqa import QuestionBatches  # noqa: E402

CHAPTER = {"g_dim": 32, "f_dim": 32}  # the chapter's RN


def seconds_per_1000_scenes(model: torch.nn.Module, data: dict) -> float:
    b = QuestionBatches(data["images"], data["image_index"], data["question"], data["answer"], 8, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    t0, n = None, 0
    for k, (x, y) in enumerate(b):
        if k == 1:  # the first batch warms up
            t0, n = time.perf_counter(), 0
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(x["images"])
    return (time.perf_counter() - t0) / n * 1000


def bench_vqa(scenes: int = 120, sizes: tuple[int, ...] = (24, 32, 40, 48)) -> list[dict]:
    rows = []
    for size in sizes:
        data = sort_of_clevr(scenes, seed=0, size=size)
        g = size // 8
        for name, make in (("Relation Network", lambda s=size: RelationNetwork(image_size=s, **CHAPTER)),
                           ("CNN+MLP", lambda s=size: CNNMLP(image_size=s))):
            torch.manual_seed(0)
            rows.append({"model": name, "size": size, "grid": f"{g}x{g}", "pairs": (g * g) ** 2 if "Relation" in name else None,
                         "s_per_1000": seconds_per_1000_scenes(make(), data), "chapter": size == SIZE})
    return rows


def chapter_run(seed: int, scenes: int = 2400, epochs: int = 8) -> dict:
    """Section 4 of the chapter with training seed ``seed`` (same data, same recipe): test accuracies."""
    from mmcourse.config import seed_everything
    from mmcourse.train import fit, predict

    soc = {"train": sort_of_clevr(scenes, seed=1), "val": sort_of_clevr(300, seed=2), "test": sort_of_clevr(1000, seed=3)}

    def qb(split: str, shuffle: bool = False) -> QuestionBatches:
        d = soc[split]
        return QuestionBatches(d["images"], d["image_index"], d["question"], d["answer"], 8, shuffle=shuffle, seed=seed)

    out = {}
    for name, make in (("CNN+MLP", lambda: CNNMLP(hidden=256)), ("RN", lambda: RelationNetwork(**CHAPTER))):
        seed_everything(seed)
        model = make()
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=len(qb("train")) * epochs, pct_start=0.15)
        fit(model, qb("train", True), qb("val"), epochs=epochs, optimizer=opt, scheduler=sched, seed=seed,
            progress=False, device=torch.device("cpu"))
        logits, y = predict(model, qb("test"), device=torch.device("cpu"))
        ok, rel = logits.argmax(1) == y, soc["test"]["relational"]
        out[name] = {"relational": float(ok[rel].float().mean()), "non-relational": float(ok[~rel].float().mean())}
    out["gain"] = 100 * (out["RN"]["relational"] - out["CNN+MLP"]["relational"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", type=int, default=120)
    p.add_argument("--spread", action="store_true", help="train the chapter's recipe with seeds 0, 1, 2")
    a = p.parse_args()
    if a.spread:
        runs = {s: chapter_run(s) for s in (0, 1, 2)}
        for s, r in runs.items():
            print(f"seed {s}: {r}", flush=True)
        for key in (("RN", "relational"), ("RN", "non-relational"), ("CNN+MLP", "relational")):
            v = [runs[s][key[0]][key[1]] for s in runs]
            print(f"{key}: spread (max - min) {max(v) - min(v):.4f}")
        g = [runs[s]["gain"] for s in runs]
        print(f"RN - CNN+MLP relational (points): spread {max(g) - min(g):.2f}")
        return
    rows = bench_vqa(a.scenes)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    print(f"\nSort-of-CLEVR training time, {date.today()}, {machine}\n")
    print("| model | image | CNN grid | pairs | s per 1,000 scenes (36,000 questions) |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        mark = " (chapter)" if r["chapter"] else ""
        print(f"| {r['model']} | {r['size']} px | {r['grid']}{mark} | {r['pairs'] or '-'} | {r['s_per_1000']:.1f} |")


if __name__ == "__main__":
    main()
