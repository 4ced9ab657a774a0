"""Solutions to the exercises of 01_multimodal_data. Each function asserts its answer."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from mmcourse.data import FSDD, mnist_pool, tiny_shakespeare
from mmcourse.text import Vocab, tokenize


def exercise_1() -> dict[int, tuple[int, float]]:
    """Vocabulary size and held-out coverage for min_freq 1, 2 and 5."""
    lines = [ln for ln in tiny_shakespeare().splitlines() if ln.strip()]
    cut = int(0.9 * len(lines))
    train = [tokenize(ln) for ln in lines[:cut]]
    val = [tokenize(ln) for ln in lines[cut:]]
    out = {}
    for m in (1, 2, 5):
        v = Vocab.build(train, min_freq=m, pad="<pad>", unk="<unk>")
        out[m] = (len(v), v.coverage(val))
    sizes, covs = [out[m][0] for m in (1, 2, 5)], [out[m][1] for m in (1, 2, 5)]
    assert sizes[0] > sizes[1] > sizes[2], "a higher threshold keeps fewer tokens"
    assert covs[0] >= covs[1] >= covs[2], "and covers fewer held-out tokens"
    assert sizes[1] < 0.6 * sizes[0] and covs[0] - covs[1] < 0.03, "min_freq=2 halves the table for ~1 % coverage"
    return out


def exercise_2() -> dict[int, tuple[float, float]]:
    """Window length (ms) and frequency-bin width (Hz) at 8 kHz."""
    sr = 8000
    out = {n: (1000 * n / sr, sr / n) for n in (128, 512)}
    assert out[128] == (16.0, 62.5) and out[512] == (64.0, 15.625)
    return out


def is_clipped(wave: torch.Tensor, level: float = 0.99, share: float = 0.01) -> bool:
    """True when more than ``share`` of the samples sit at or beyond ``level`` of full scale."""
    return bool((wave.abs() >= level).float().mean() > share)


def exercise_3() -> bool:
    """A clipping detector finds a recording that was clipped on purpose, and passes the original."""
    fsdd = FSDD("test")
    wave = fsdd.waves[0][: fsdd.lengths[0]]
    clipped = (wave / wave.abs().max() * 4).clamp(-1, 1)  # 4x too loud, clipped at full scale
    assert not is_clipped(wave) and is_clipped(clipped)
    assert sum(is_clipped(fsdd.waves[i][: fsdd.lengths[i]]) for i in range(len(fsdd))) == 0
    return True


def exercise_4() -> float:
    """A horizontal flip turns some digits into others (or into nothing): do not use it on MNIST."""
    pool = mnist_pool("train")
    twos, fives = pool.x[pool.y == 2][:200], pool.x[pool.y == 5][:200]
    flipped = v2.functional.horizontal_flip(twos)
    # The mean flipped "2" looks more like a "5" than the mean "2" does (pixel correlation).
    def corr(a, b):
        return float(torch.corrcoef(torch.stack([a.mean(0).flatten(), b.mean(0).flatten()]))[0, 1])
    assert corr(flipped, fives) > corr(twos, fives)
    return corr(flipped, fives)


if __name__ == "__main__":
    for f in (exercise_1, exercise_2, exercise_3, exercise_4):
        print(f.__name__, f())
