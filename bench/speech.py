"""Speech-recognition benchmark (chapter 11): real-time factor (seconds of compute per second of
audio) of the course's recogniser, greedy and beam + LM, and of pocketsphinx on the same audio.

    python bench/speech.py              # 1 thread, 20 test utterances (~80 s of audio); ~1 minute
                                        # (ours: median of 3 interleaved runs; pocketsphinx: one run each)
    python bench/speech.py --n 40

The acoustic model is the one notebook 11 trained (``$MMCOURSE_CACHE/speech/asr.pt``); beam search
is faster on a trained model's spiky emissions, so without that file the beam rows are skipped.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmcourse.config import cache_dir  # noqa: E402
from mmcourse.data.digit_strings import build_utterances, digit_strings  # noqa: E402
from mmcourse.models.asr import CTCRecognizer  # noqa: E402
from mmcourse.speech.baseline import PocketSphinx  # noqa: E402
from mmcourse.speech.lm import NGramLM  # noqa: E402
from mmcourse.speech.recognizer import Recognizer  # noqa: E402
from mmcourse.train import load_checkpoint  # noqa: E402


def bench_speech(n: int = 20) -> dict[str, float]:
    """``{system: real-time factor}`` over the first ``n`` test utterances, one at a time."""
    torch.set_num_threads(1)
    utts = build_utterances("test", n)
    audio_s = sum(u.seconds for u in utts)
    out: dict[str, float] = {"audio_s": audio_s}
    ckpt = cache_dir() / "speech" / "asr.pt"
    if ckpt.is_file():
        model = CTCRecognizer()
        state = load_checkpoint(ckpt, model)
        lm = NGramLM(4).fit(digit_strings(20_000, seed=11))
        rec = Recognizer(model.eval(), lm, state.get("alpha", 0.5), state.get("beta", 1.0))
        for method in ("greedy", "beam_lm"):
            rec.transcribe(utts[0].wave, method=method)  # warm-up
        times: dict[str, list[float]] = {"greedy": [], "beam_lm": []}
        for _ in range(3):  # interleaved repeats, median: drifting machine load hits both alike
            for method in times:
                t0 = time.perf_counter()
                for u in utts:
                    rec.transcribe(u.wave, method=method)
                times[method].append(time.perf_counter() - t0)
        for method, ts in times.items():
            out[f"ours, {method}"] = statistics.median(ts) / audio_s
    else:
        print(f"no trained model at {ckpt}: run notebook 11 first (our rows skipped)", file=sys.stderr)
    for grammar in (True, False):
        ps = PocketSphinx(grammar=grammar)
        t0 = time.perf_counter()
        for u in utts:
            ps.transcribe(u.wave, 8000)
        out[f"pocketsphinx, {'digit grammar' if grammar else 'default LM'}"] = (time.perf_counter() - t0) / audio_s
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20, help="test utterances to decode")
    a = p.parse_args()
    r = bench_speech(a.n)
    print(f"\nReal-time factor, 1 thread, {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"{a.n} test utterances, {r.pop('audio_s'):.0f} s of 8 kHz audio (pocketsphinx: resampled to 16 kHz)\n")
    print("| recogniser | real-time factor (compute s / audio s) |\n| --- | --- |")
    for k, v in r.items():
        print(f"| {k} | {v:.4f} |")


if __name__ == "__main__":
    main()
