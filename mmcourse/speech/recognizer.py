"""The recogniser: a trained :class:`~mmcourse.models.asr.CTCRecognizer` plus front end, decoders and
the rules for awkward input; batched evaluation; chunked decoding of long recordings.

Bad input, defined results (never a crash):

* silence (peak below ``SILENCE``) -> ``""`` (no words), without running the model;
* a clip shorter than one 40 ms output frame -> zero-padded to ``MIN_SAMPLES`` first;
* another sample rate -> resampled to 8 kHz, with a ``UserWarning``;
* stereo / multi-channel ``[C, T]`` or ``[T, C]`` (``C <= 8``) -> averaged to mono, with a warning;
* integer PCM -> scaled to [-1, 1]; empty, non-finite or higher-rank input -> ``ValueError`` naming ``wave``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from mmcourse.audio import resample
from mmcourse.models.asr import BLANK, CTCRecognizer, output_lengths
from mmcourse.speech import ctc
from mmcourse.speech.features import logmel
from mmcourse.speech.lm import NGramLM

SAMPLE_RATE = 8000
HOP = 80
FRAME = 4 * HOP  # samples per output frame (40 ms)
SILENCE = 1e-4
MIN_SAMPLES = 2 * FRAME
METHODS = ("greedy", "beam", "beam_lm")


def as_mono(wave, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Any reasonable waveform -> float32 mono ``[T]`` at 8 kHz (see the module docstring)."""
    if isinstance(wave, np.ndarray):
        wave = torch.from_numpy(np.ascontiguousarray(wave))
    if not isinstance(wave, torch.Tensor):
        raise ValueError(f"wave must be a tensor or numpy array of samples, got {type(wave).__name__}")
    if not wave.is_floating_point():
        scale = float(torch.iinfo(wave.dtype).max) + 1 if wave.dtype != torch.bool else 1.0
        wave = wave.float() / scale
    wave = wave.float()
    if wave.ndim == 2:
        ch_dim = 0 if wave.shape[0] <= 8 and wave.shape[0] < wave.shape[1] else 1
        if wave.shape[ch_dim] > 8:
            raise ValueError(f"wave has shape {tuple(wave.shape)}: expected mono [T] or a few channels [C, T]")
        warnings.warn(f"wave has {wave.shape[ch_dim]} channels: averaged to mono", stacklevel=3)
        wave = wave.mean(ch_dim)
    if wave.ndim != 1:
        raise ValueError(f"wave must be mono samples [T] (or [C, T]), got shape {tuple(wave.shape)}")
    if wave.numel() == 0:
        raise ValueError("wave is empty (0 samples): nothing to recognise")
    if not torch.isfinite(wave).all():
        raise ValueError("wave contains NaN or infinite samples; check the file or the computation before")
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if sample_rate != SAMPLE_RATE:
        warnings.warn(f"sample_rate is {sample_rate} Hz: resampled to {SAMPLE_RATE} Hz", stacklevel=3)
        wave = resample(wave, sample_rate, SAMPLE_RATE)
    return wave


class Recognizer:
    """Digits from audio: ``rec.transcribe(wave, sample_rate)`` -> ``"4155550123"``.

    ``method``: ``greedy``, ``beam`` (prefix beam search) or ``beam_lm`` (with the n-gram LM,
    weight ``alpha`` and insertion bonus ``beta``).
    """

    def __init__(self, model: CTCRecognizer, lm: NGramLM | None = None, alpha: float = 0.5,
                 beta: float = 1.0, beam: int = 8):
        self.model, self.lm, self.alpha, self.beta, self.beam = model.eval(), lm, alpha, beta, beam

    def _lm_fn(self, prefix: tuple[int, ...], label: int | None) -> float:
        return self.lm.logprob([p - 1 for p in prefix], None if label is None else label - 1)

    @torch.no_grad()
    def emissions(self, waves: Sequence[torch.Tensor], batch_size: int = 32) -> list[torch.Tensor]:
        """Log-probabilities ``[T'_i, 11]`` for 8 kHz mono waves (batched, longest first)."""
        feats = [logmel(w) for w in waves]
        order = sorted(range(len(feats)), key=lambda i: -feats[i].shape[0])
        out: list[torch.Tensor] = [torch.empty(0)] * len(feats)
        device = next(self.model.parameters()).device
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            lengths = torch.tensor([feats[i].shape[0] for i in idx])
            x = pad_sequence([feats[i] for i in idx], batch_first=True).to(device)
            lp = self.model((x, lengths)).float().cpu()
            for row, i in enumerate(idx):
                out[i] = lp[row, : int(output_lengths(lengths[row]))]
        return out

    def decode(self, log_probs: torch.Tensor, method: str = "beam_lm", beam: int | None = None,
               alpha: float | None = None, beta: float | None = None) -> str:
        """Emissions ``[T', 11]`` -> digit string."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method == "greedy":
            labels = ctc.greedy(log_probs, BLANK)
        else:
            use_lm = method == "beam_lm"
            if use_lm and self.lm is None:
                raise ValueError("method='beam_lm' needs a language model: Recognizer(model, lm=NGramLM(...).fit(...))")
            labels = ctc.beam_decode(log_probs, beam=beam or self.beam, blank=BLANK,
                                     lm=self._lm_fn if use_lm else None,
                                     alpha=(self.alpha if alpha is None else alpha) if use_lm else 0.0,
                                     beta=(self.beta if beta is None else beta) if use_lm else 0.0)
        return "".join(str(c - 1) for c in labels)

    def transcribe(self, wave, sample_rate: int = SAMPLE_RATE, method: str = "beam_lm") -> str:
        """One recording -> digit string (``""`` for silence). See the module docstring for odd input."""
        w = as_mono(wave, sample_rate)
        if w.abs().max() < SILENCE:
            return ""
        if w.numel() < MIN_SAMPLES:
            w = torch.nn.functional.pad(w, (0, MIN_SAMPLES - w.numel()))
        return self.decode(self.emissions([w])[0], method)

    def transcribe_many(self, waves: Sequence[torch.Tensor], method: str = "beam_lm", **kwargs) -> list[str]:
        return [self.decode(e, method, **kwargs) for e in self.emissions(waves)]

    def long_emissions(self, wave: torch.Tensor, chunk_s: float = 8.0, overlap_s: float = 2.0) -> torch.Tensor:
        """Emissions of a long recording computed chunk by chunk: chunks of ``chunk_s`` seconds that
        overlap by ``overlap_s``; each keeps its middle (half the overlap is dropped at each inner
        edge), so every output frame comes from a chunk that saw at least ``overlap_s / 2`` of context."""
        chunk, overlap = round(chunk_s * SAMPLE_RATE / FRAME), round(overlap_s * SAMPLE_RATE / FRAME)  # frames
        if not 0 <= overlap < chunk or overlap % 2:
            raise ValueError(f"need 0 <= overlap < chunk and an even overlap in 40 ms frames, got "
                             f"chunk_s={chunk_s}, overlap_s={overlap_s}")
        w = as_mono(wave)
        step, half = chunk - overlap, overlap // 2
        starts = list(range(0, max(w.numel() - overlap * FRAME, 1), step * FRAME))
        ems = self.emissions([w[s : s + chunk * FRAME] for s in starts])
        kept = []
        for k, e in enumerate(ems):
            a = 0 if k == 0 else half
            b = e.shape[0] if k == len(ems) - 1 else min(e.shape[0], chunk - half)
            kept.append(e[a:b])
        return torch.cat(kept)  # [T', 11]
