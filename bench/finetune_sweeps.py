"""Chapter 08's full-mode experiments for sections 2 (sentiment) and 3 (speaker adaptation), run ahead
of the chapter's build: each calls exactly the cached functions the notebook calls, so the build only
reads the cache. One torch thread (run it through a CPU slot):

    .venv/bin/python bench/finetune_sweeps.py text --seeds 0 1 2   (tries CANDIDATES at seed 0 first)
    .venv/bin/python bench/finetune_sweeps.py speech --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace


def text(seeds: list[int], strategies: list[str]) -> None:
    from mmcourse.finetune import sentiment as st
    from mmcourse.metrics import f1_score

    y = st.tweet_split("test", st.FULL.n_test)[1]
    for s in strategies:
        if s in st.CANDIDATES:  # learning rates chosen on validation, at seed 0
            for c in st.CANDIDATES[s]:
                print(f"text {s} candidate lr {c.lr} backbone_lr {c.backbone_lr} epochs {c.epochs}: "
                      f"validation loss {st.best_val_loss(s, c):.4f}", flush=True)
    for seed in seeds:
        for s in strategies:
            t0 = time.perf_counter()
            cfg = st.select(s, st.CANDIDATES[s]) if s in st.CANDIDATES else st.FULL
            r = st.run(s, replace(cfg, seed=seed))
            f1 = float(f1_score(y, r["probs"].argmax(-1), average="macro"))
            print(f"text seed {seed} {s:6s} macro-F1 {f1:.4f} trainable {r['trainable']:,} "
                  f"({r['seconds']:.0f} s recorded, {time.perf_counter() - t0:.0f} s now)", flush=True)


def speech(seeds: list[int]) -> None:
    from mmcourse.finetune import speaker as sp

    t0 = time.perf_counter()
    res = sp.sweep(sp.FULL, seeds=seeds)
    print(sp.summary(res), f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    from mmcourse.device import configure_threads
    from mmcourse.finetune.sentiment import STRATEGIES

    configure_threads(preferred=1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["text", "speech"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    args = ap.parse_args()
    text(args.seeds, args.strategies) if args.what == "text" else speech(args.seeds)
