"""Connected spoken digit strings (phone, PIN and order numbers) built from FSDD recordings.

**The strings** (:func:`digit_strings`) follow a fixed recipe, so that a language model has
something to learn:

=========  ======  =================================================================
format     share   digits
=========  ======  =================================================================
phone      40 %    a 3-digit area code (one of :data:`AREA_CODES`), then ``555`` half the
                   time (else 3 random digits), then 4 random digits: 10 digits
year       20 %    a year 1950-2029: ``19``/``20`` + 2 digits (4 digits)
pin        20 %    4 uniform digits
uniform    20 %    3-10 uniform digits
=========  ======  =================================================================

**The audio** (:func:`build_utterances`): each utterance is one speaker's FSDD recordings of
its digits, each trimmed of its leading/trailing silence, with a random gain (+-3 dB) and speed
(0.91-1.11x) per word, joined by random pauses (0.05-0.30 s, plus 0.1-0.3 s at both ends),
optionally with white noise at a given SNR (measured over the whole utterance).

**Splits** never mix speakers or takes: ``"train"`` uses takes 10-49, ``"val"`` takes 5-9 and
``"test"`` the official test takes 0-4, all of the five training speakers; ``"unseen"`` uses
the test takes 0-4 of :data:`HELD_OUT` (``theo``), who is in none of those splits, and ``"adapt"``
his takes 10-49 (speaker-held-out training data, to measure how much of the gap it closes).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

import torch

from mmcourse.audio import add_noise, resample
from mmcourse.data.fsdd import SAMPLE_RATE, SPEAKERS, _load_all

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
AREA_CODES = ["212", "202", "310", "312", "415", "617", "718", "800"]
FORMATS = {"phone": 0.4, "year": 0.2, "pin": 0.2, "uniform": 0.2}
HELD_OUT = "theo"
TRAIN_SPEAKERS = sorted(s for s in SPEAKERS if s != HELD_OUT)
SPLIT_TAKES = {"train": range(10, 50), "val": range(5, 10), "test": range(0, 5), "unseen": range(0, 5),
               "adapt": range(10, 50)}
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3, "unseen": 4, "adapt": 5}
SPEED_RATES = (7200, 7600, 8000, 8400, 8800)  # resample 8 kHz to these: speed 1.11x ... 0.91x


def _one_string(rng: random.Random) -> str:
    fmt = rng.choices(list(FORMATS), weights=list(FORMATS.values()))[0]
    rand = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    if fmt == "phone":
        return rng.choice(AREA_CODES) + ("555" if rng.random() < 0.5 else rand(3)) + rand(4)
    if fmt == "year":
        return rng.choice(["19", "20"]) + (str(rng.randint(50, 99)) if rng.random() < 0.5 else f"{rng.randint(0, 29):02d}")
    if fmt == "pin":
        return rand(4)
    return rand(rng.randint(3, 10))


def digit_strings(n: int, seed: int = 0) -> list[str]:
    """``n`` digit strings drawn from the recipe above (a list of ``str`` like ``"4155550123"``)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    return [_one_string(rng) for _ in range(n)]


def to_words(digits: str) -> str:
    """``"307"`` -> ``"three zero seven"``."""
    bad = [c for c in digits if c not in "0123456789"]
    if bad:
        raise ValueError(f"digits must contain only 0-9, got {digits!r}")
    return " ".join(WORDS[int(c)] for c in digits)


@dataclass
class Utterance:
    """One connected digit string: ``wave [T]`` at 8 kHz, its digits, who said it, which FSDD takes
    were used (``(digit, take)`` per word) and each word's ``(start, end)`` in samples."""

    wave: torch.Tensor
    digits: str
    speaker: str
    split: str
    takes: list[tuple[int, int]] = field(default_factory=list)
    bounds: list[tuple[int, int]] = field(default_factory=list)

    @property
    def labels(self) -> list[int]:
        return [int(c) for c in self.digits]

    @property
    def seconds(self) -> float:
        return self.wave.shape[-1] / SAMPLE_RATE


def trim(wave: torch.Tensor, rel_db: float = -30.0, frame: int = 80, margin: int = 2) -> torch.Tensor:
    """Cut leading/trailing silence: keep the 10 ms frames within ``rel_db`` of the loudest, plus
    ``margin`` frames either side. ``[T] -> [T']``; a silent clip comes back unchanged."""
    n = wave.shape[-1] // frame
    if n == 0:
        return wave
    rms = wave[: n * frame].reshape(n, frame).pow(2).mean(1).sqrt()  # [n]
    loud = (rms >= rms.max() * 10 ** (rel_db / 20)).nonzero().flatten()
    if rms.max() == 0 or len(loud) == 0:
        return wave
    a, b = max(0, int(loud[0]) - margin), min(n, int(loud[-1]) + 1 + margin)
    return wave[a * frame : b * frame]


@functools.cache
def _pool() -> dict[tuple[str, int, int], torch.Tensor]:
    """(speaker, digit, take) -> trimmed waveform [T]."""
    recs, waves = _load_all()
    return {(r.speaker, r.digit, r.take): trim(torch.from_numpy(w)) for r, w in zip(recs, waves, strict=True)}


def build_utterances(split: str, n: int, seed: int | None = None, snr_db: float | None = None,
                     speakers: list[str] | None = None, strings: list[str] | None = None,
                     augment: bool = True) -> list[Utterance]:
    """``n`` utterances of ``split`` (train / val / test / unseen / adapt; see the module docstring).

    Every utterance has one speaker; within a split each (speaker, digit) cycles through its takes
    in a shuffled order, so the recordings are used evenly. ``strings`` (optional, length ``n``)
    fixes the digit strings; ``snr_db`` adds white noise; ``augment=False`` keeps gain and speed
    at 1. ``seed`` defaults to the split's own fixed seed (the test sets never change).
    """
    if split not in SPLIT_TAKES:
        raise ValueError(f"split must be one of {sorted(SPLIT_TAKES)}, got {split!r}")
    allowed = [HELD_OUT] if split in ("unseen", "adapt") else TRAIN_SPEAKERS
    speakers = speakers or allowed
    if not set(speakers) <= set(allowed):
        raise ValueError(f"split {split!r} may only use speakers {allowed}, got {speakers}")
    if strings is not None and len(strings) != n:
        raise ValueError(f"strings must hold n={n} digit strings, got {len(strings)}")
    seed = SPLIT_SEEDS[split] if seed is None else seed
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    strings = strings if strings is not None else digit_strings(n, seed=1000 + seed)
    pool, takes = _pool(), list(SPLIT_TAKES[split])
    queues: dict[tuple[str, int], list[int]] = {}
    out = []
    for digits in strings:
        spk = rng.choice(speakers)
        pieces, used, bounds = [torch.zeros(int(rng.uniform(0.1, 0.3) * SAMPLE_RATE))], [], []
        pos = pieces[0].numel()
        for k, c in enumerate(digits):
            q = queues.setdefault((spk, int(c)), [])
            if not q:
                q.extend(rng.sample(takes, len(takes)))
            take = q.pop()
            w = pool[(spk, int(c), take)]
            if augment:
                rate = rng.choice(SPEED_RATES)
                w = resample(w, SAMPLE_RATE, rate) if rate != SAMPLE_RATE else w
                w = w * 10 ** (rng.uniform(-3, 3) / 20)
            gap = rng.uniform(0.1, 0.3) if k == len(digits) - 1 else rng.uniform(0.05, 0.3)
            pieces += [w, torch.zeros(int(gap * SAMPLE_RATE))]
            used.append((int(c), take))
            bounds.append((pos, pos + w.numel()))
            pos += w.numel() + pieces[-1].numel()
        wave = torch.cat(pieces)
        if snr_db is not None:
            wave = add_noise(wave, snr_db, generator=gen)
        out.append(Utterance(wave.clamp(-1, 1), digits, spk, split, used, bounds))
    return out
