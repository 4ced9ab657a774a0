"""The Free Spoken Digit Dataset (FSDD): 3,000 recordings of spoken digits, 8 kHz mono.

Six speakers x ten digits x fifty takes, files ``{digit}_{speaker}_{take}.wav``.
Official split: takes 0-4 of every speaker and digit are the test set (300 files),
takes 5-49 the training set (2,700). It is *not* speaker-independent; use
``by="speaker"`` to hold one speaker out.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from mmcourse.data.registry import REGISTRY, fetch, read_verified

SAMPLE_RATE = 8000
DIGITS = [str(d) for d in range(10)]
# Speaker metadata, from the dataset's own metadata.py (v1.0.10).
SPEAKERS: dict[str, dict[str, str]] = {
    "george": {"gender": "male", "accent": "GRC/Greek", "language": "english"},
    "jackson": {"gender": "male", "accent": "USA/neutral", "language": "english"},
    "lucas": {"gender": "male", "accent": "DEU/German", "language": "english"},
    "nicolas": {"gender": "male", "accent": "BEL/French", "language": "english"},
    "theo": {"gender": "male", "accent": "USA/neutral", "language": "english"},
    "yweweler": {"gender": "male", "accent": "DEU/German", "language": "english"},
}


@dataclass(frozen=True)
class Recording:
    """One FSDD file's metadata."""

    path: Path
    digit: int
    speaker: str
    take: int


def parse_name(path: Path) -> Recording:
    """``3_theo_12.wav`` -> Recording(digit=3, speaker='theo', take=12)."""
    try:
        digit, speaker, take = Path(path).stem.split("_")
        return Recording(Path(path), int(digit), speaker, int(take))
    except ValueError as err:
        raise ValueError(f"{path} is not an FSDD file name like '3_theo_12.wav'") from err


@functools.cache
def _load_all() -> tuple[list[Recording], list[np.ndarray]]:
    paths = fetch("fsdd")
    contents = read_verified("fsdd")
    recs, waves = [], []
    for p, data in zip(paths, contents, strict=True):
        try:
            wave, sr = sf.read(io.BytesIO(data), dtype="float32")
        except sf.LibsndfileError as err:
            raise ValueError(f"{p} could not be read as audio ({err}); delete it to re-download") from err
        if sr != SAMPLE_RATE:
            raise ValueError(f"{p} has sample rate {sr}, expected {SAMPLE_RATE}")
        recs.append(parse_name(p))
        waves.append(wave if wave.ndim == 1 else wave.mean(axis=1))
    return recs, waves


class FSDD(Dataset):
    """Spoken digits as fixed-length waveforms.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.
        by: ``"take"`` (official split: takes 0-4 test) or ``"speaker"`` (``test_speaker`` held out).
        length: samples per item; shorter recordings are zero-padded at the end, longer
            ones cropped (8,000 = 1 s keeps 99 % of recordings whole).

    Items: ``(wave [length] float32 in [-1, 1], label int64)``.
    Attributes: ``waves [N, length]``, ``labels [N]``, ``lengths [N]`` (samples before
    padding), ``recordings`` (list of :class:`Recording`), ``speakers`` (names per item).
    """

    def __init__(self, split: str = "train", by: str = "take", test_speaker: str = "theo",
                 length: int = SAMPLE_RATE):
        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be train/test/all, got {split!r}")
        if by not in ("take", "speaker"):
            raise ValueError(f"by must be 'take' or 'speaker', got {by!r}")
        if by == "speaker" and test_speaker not in SPEAKERS:
            raise ValueError(f"test_speaker must be one of {sorted(SPEAKERS)}, got {test_speaker!r}")
        recs, waves = _load_all()
        keep = []
        for i, r in enumerate(recs):
            is_test = r.take < 5 if by == "take" else r.speaker == test_speaker
            if split == "all" or (split == "test") == is_test:
                keep.append(i)
        self.recordings = [recs[i] for i in keep]
        self.speakers = [r.speaker for r in self.recordings]
        self.lengths = torch.tensor([min(len(waves[i]), length) for i in keep])
        self.waves = torch.zeros(len(keep), length)
        for row, i in enumerate(keep):
            w = waves[i][:length]
            self.waves[row, : len(w)] = torch.from_numpy(w)
        self.labels = torch.tensor([r.digit for r in self.recordings], dtype=torch.int64)
        self.classes = DIGITS
        self.sample_rate = SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.waves[i], self.labels[i]

    def __repr__(self) -> str:
        return f"FSDD(n={len(self)}, waves={tuple(self.waves.shape)}, sr={SAMPLE_RATE})"


def fsdd_files() -> list[Path]:
    """Paths of the 3,000 recordings (downloaded if missing)."""
    return fetch("fsdd")


assert len(REGISTRY["fsdd"].files) == 3000
