"""Course benchmarks: prints one table (markdown), measured in one run.

    python bench/run.py                 # (a) fit overhead, (b) batched MFCC vs librosa, (c) notebooks, fast mode
    python bench/run.py --full          # (c) also in full mode (long: every chapter trains for real)
    python bench/run.py --skip-notebooks
    python bench/run.py --skip-notebooks --skip-fit   # (b) only: a few seconds
    python bench/run.py --speech        # (d) also the recogniser's real-time factor (bench/speech.py)
    python bench/run.py --vqa           # (e) also Sort-of-CLEVR RN vs CNN+MLP time per epoch (bench/vqa.py)
    python bench/run.py --finetune      # (f) also chapter 08's strategies: s / epoch, peak memory (bench/finetune.py)

(a) ``fit()`` time per epoch against a bare PyTorch loop on the same model, data and batches.
(b) MFCC of all 3,000 FSDD recordings: one batched call against librosa file by file (median of 3 each).
(c) each notebook's wall time, executed headless with nbclient.
Needs ``MMCOURSE_DATA`` (or downloads the data). Targets: fit overhead <= 5 %; MFCC >= 10x.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmcourse.data import FSDD, mnist_pool  # noqa: E402
from mmcourse.train import fit, loaders  # noqa: E402


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )  # fmt: skip


def bare_epoch(model: nn.Module, loader, opt) -> None:
    """The loop fit() wraps, with nothing else."""
    model.train()
    for x, y in loader:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def bench_fit(epochs: int = 4, repeats: int = 3) -> dict:
    train, val = loaders(mnist_pool("train"), mnist_pool("val"), batch_size=128)
    fit_times, bare_times = [], []
    for _ in range(repeats):  # interleave the two, so drifting machine load hits both alike
        m = _cnn()
        with contextlib.redirect_stderr(io.StringIO()):  # the bar is drawn (and timed), not printed
            h = fit(m, train, None, epochs=epochs, progress=True, seed=0)
        fit_times += [r["seconds"] for r in h.rows[1:]]  # skip the warm-up epoch
        m = _cnn()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        for e in range(epochs):
            t0 = time.perf_counter()
            bare_epoch(m, train, opt)
            if e:
                bare_times.append(time.perf_counter() - t0)
    f, b = statistics.median(fit_times), statistics.median(bare_times)
    return {"fit_s": f, "bare_s": b, "overhead_pct": 100 * (f / b - 1)}


def bench_mfcc(repeats: int = 3) -> dict:
    """Median wall time of ``repeats`` runs of each, interleaved (so drifting load hits both alike)."""
    import librosa

    from mmcourse.audio import FeatureConfig, Features

    waves = FSDD("all").waves  # [3000, 8000]
    feats = Features(FeatureConfig("mfcc"))
    arr = waves.numpy()

    def librosa_all() -> list:
        return [librosa.feature.mfcc(y=a, sr=8000, n_mfcc=13, n_fft=256, hop_length=80, n_mels=40,
                                     pad_mode="constant") for a in arr]

    with torch.no_grad():
        feats(waves[:10])  # warm-up
        librosa.feature.mfcc(y=arr[0], sr=8000, n_mfcc=13, n_fft=256, hop_length=80, n_mels=40)  # warm-up
        t_ours, t_libs = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ours = feats(waves)
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ref = librosa_all()
            t_libs.append(time.perf_counter() - t0)
    t_ours, t_lib = statistics.median(t_ours), statistics.median(t_libs)
    diff = max(float((ours[i] - torch.from_numpy(ref[i])).abs().max()) for i in range(0, 3000, 97))
    return {"ours_s": t_ours, "librosa_s": t_lib, "speedup": t_lib / t_ours, "max_abs_diff": diff}


def bench_notebooks(modes: list[str]) -> list[tuple[str, str, float]]:
    import nbformat
    from nbclient import NotebookClient

    rows = []
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for mode in modes:
            nb = nbformat.read(nb_path, as_version=4)
            os.environ["MMCOURSE_FAST"] = "1" if mode == "fast" else "0"
            t0 = time.perf_counter()
            NotebookClient(nb, timeout=3600, kernel_name="python3",
                           resources={"metadata": {"path": str(nb_path.parent)}}).execute()
            rows.append((nb_path.stem, mode, time.perf_counter() - t0))
            print(f"  {nb_path.stem} ({mode}): {rows[-1][2]:.0f} s", file=sys.stderr)
    os.environ.pop("MMCOURSE_FAST", None)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="also time the notebooks in full mode")
    p.add_argument("--skip-notebooks", action="store_true")
    p.add_argument("--skip-fit", action="store_true", help="skip (a), the fit() overhead benchmark")
    p.add_argument("--speech", action="store_true", help="(d) real-time factor of chapter 11's recogniser")
    p.add_argument("--vqa", action="store_true", help="(e) chapter 10's RN and CNN+MLP: seconds per epoch by grid")
    p.add_argument("--finetune", action="store_true", help="(f) chapter 08's strategies: seconds per epoch, peak memory")
    a = p.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    fa = None if a.skip_fit else bench_fit()
    mf = bench_mfcc()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nBenchmarks, {date.today()}, {machine}, load average {load:.1f} at the end\n")
    print("| benchmark | measured | target |\n| --- | --- | --- |")
    if fa is not None:
        print(f"| (a) `fit()` epoch vs bare loop (small CNN, MNIST pool, 8,000 images) | "
              f"{fa['fit_s']:.2f} s vs {fa['bare_s']:.2f} s: overhead {fa['overhead_pct']:+.1f} % | <= 5 % |")
    print(f"| (b) MFCC of 3,000 FSDD clips: batched `mmcourse.audio.Features` vs librosa per file | "
          f"{mf['ours_s']:.2f} s vs {mf['librosa_s']:.2f} s: **{mf['speedup']:.0f}x** "
          f"(max abs diff {mf['max_abs_diff']:.4f}) | >= 10x |")
    if a.speech:
        from speech import bench_speech

        rtf = bench_speech()
        audio_s = rtf.pop("audio_s")
        for k, v in rtf.items():
            print(f"| (d) real-time factor, {k}, 1 thread ({audio_s:.0f} s of test audio) | {v:.4f} | |")
    if a.vqa:
        from vqa import bench_vqa

        for r in bench_vqa():
            print(f"| (e) Sort-of-CLEVR {r['model']}, {r['size']} px, {r['grid']} grid"
                  f"{' (chapter)' if r['chapter'] else ''}: s per 1,000 scenes | {r['s_per_1000']:.1f} | |")
    if a.finetune:
        from finetune import NAMES, bench_finetune

        for r in bench_finetune():
            cache = f", cached features {r['cache_speedup']:.1f}x faster" if "cache_speedup" in r else ""
            print(f"| (f) chapter 08, {NAMES[r['strategy']]}, 1,000 labels, {r['threads']} thread(s): s / epoch, "
                  f"peak RSS{cache} | {r['seconds_per_epoch']:.2f} s, {r['peak_rss_mb']:.0f} MB | |")
    if not a.skip_notebooks:
        for stem, mode, sec in bench_notebooks(["fast", "full"] if a.full else ["fast"]):
            print(f"| (c) `{stem}` wall time, {mode} mode | {sec:.0f} s | fast < 120 s |")


if __name__ == "__main__":
    main()
