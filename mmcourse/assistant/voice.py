"""The speech adapters: what the customer said (digits or words), and the reply spoken back.

* **Digits** (a spoken booking or bag-tag number): chapter 11's CTC recogniser
  (:class:`mmcourse.speech.recognizer.Recognizer`, beam search with its 4-gram digit LM), loaded from
  the checkpoint notebook 11 saves (``$MMCOURSE_CACHE/speech/asr.pt``, or ``asr-fast.pt`` from a fast
  run). It was trained on five FSDD speakers: on their voices it is what chapter 11 measured; on
  other voices (espeak-ng's, a learner's microphone) it is much worse (chapter 11, section 8).
* **Words** (a free-form question): pocketsphinx with its default US-English language model.
* **Speaking**: :func:`speak` turns the reply into a 16 kHz WAV with espeak-ng.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmcourse.config import cache_dir
from mmcourse.speech.recognizer import SILENCE  # peak amplitude below which a recording is silence

KINDS = ("digits", "words")
QUESTIONS = ("where is my bag", "my flight was cancelled", "I want a refund for my ticket",
             "can I change my booking")  # espeak-ng test phrases for pocketsphinx (evaluate)


@dataclass(frozen=True)
class Heard:
    """A transcript: ``text`` (digits without spaces, or words), which ``kind`` and which ``engine``."""

    text: str
    kind: str
    engine: str


def checkpoint_path() -> Path | None:
    """Notebook 11's recogniser checkpoint (full build first, else fast), or None."""
    for name in ("asr.pt", "asr-fast.pt"):
        path = cache_dir() / "speech" / name
        if path.is_file():
            return path
    return None


def load_digit_recognizer(path: Path | None = None):
    """Chapter 11's :class:`Recognizer` with its tuned LM weight and bonus (``path``: default
    :func:`checkpoint_path`). Raises ``FileNotFoundError`` saying how to make the checkpoint."""
    from mmcourse.data.digit_strings import digit_strings
    from mmcourse.models.asr import CTCRecognizer
    from mmcourse.speech.lm import NGramLM
    from mmcourse.speech.recognizer import Recognizer
    from mmcourse.train import load_checkpoint

    path = path or checkpoint_path()
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"no digit recogniser at {cache_dir() / 'speech' / 'asr.pt'}: run "
                                "notebooks/11_project_speech_recognition.ipynb once (it saves it), or pass path=")
    model = CTCRecognizer()
    state = load_checkpoint(path, model)
    lm = NGramLM(order=4).fit(digit_strings(20_000, seed=11))  # the LM notebook 11 tuned alpha/beta with
    return Recognizer(model.eval(), lm, float(state.get("alpha", 0.5)), float(state.get("beta", 1.0)))


class Listener:
    """``transcribe(wave [T], sample_rate, kind)`` -> :class:`Heard`. ``digits``: a recogniser with
    ``transcribe(wave, sample_rate) -> "0123"`` (None: digits are not available and ``kind="digits"``
    raises ``ValueError``); ``words``: one with ``transcribe(wave, sample_rate) -> "words ..."``."""

    name = "voice"

    def __init__(self, digits=None, words=None):
        from mmcourse.speech.baseline import PocketSphinx

        self.digits, self.words = digits, words or PocketSphinx(grammar=False)

    def transcribe(self, wave: torch.Tensor, sample_rate: int, kind: str = "words") -> Heard:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        w = torch.as_tensor(np.asarray(wave, dtype=np.float32))  # [T]
        if w.numel() == 0 or float(w.abs().max()) < SILENCE:  # pocketsphinx would hear words in silence
            return Heard("", kind, "silence")
        if kind == "digits":
            if self.digits is None:
                raise ValueError("spoken numbers need chapter 11's recogniser: run notebook 11 once "
                                 "(it saves $MMCOURSE_CACHE/speech/asr.pt)")
            return Heard(self.digits.transcribe(w, sample_rate), "digits", "ctc-ch11")
        return Heard(self.words.transcribe(w, sample_rate), "words", "pocketsphinx")

    def evaluate(self, n: int = 10) -> dict[str, float]:
        """Exact match of spoken digit strings (``n`` FSDD test utterances of the seen speakers, and
        ``n`` espeak-ng ones) and pocketsphinx's word error rate on espeak-ng questions."""
        from mmcourse.data.digit_strings import build_utterances
        from mmcourse.speech.baseline import espeak
        from mmcourse.speech.wer import wer

        out: dict[str, float] = {}
        if self.digits is not None:
            utts = build_utterances("test", n)
            out["digits_exact_fsdd"] = float(np.mean([self.digits.transcribe(u.wave, 8000) == u.digits
                                                      for u in utts]))
            synth = [u.digits for u in utts]
            out["digits_exact_espeak"] = float(np.mean([
                self.digits.transcribe(espeak(" ".join(d), sample_rate=8000), 8000) == d for d in synth]))
        hyps = [self.words.transcribe(espeak(q, sample_rate=16000), 16000) for q in QUESTIONS]
        out["words_wer_espeak"] = wer([q.lower() for q in QUESTIONS], hyps)
        return out


def speak(text: str, voice: str = "en-us", sample_rate: int = 16000) -> bytes:
    """The reply as 16-bit mono WAV bytes (espeak-ng, ``sample_rate`` Hz)."""
    from mmcourse.audio import to_wav_bytes
    from mmcourse.speech.baseline import espeak

    return to_wav_bytes(espeak(text, voice=voice, sample_rate=sample_rate), sample_rate)
