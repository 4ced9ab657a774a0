"""The speech adapters: what the customer said (digits or words), and the reply spoken back.

* **Digits** (a spoken booking or bag-tag number): chapter 11's CTC recogniser
  (:class:`mmcourse.speech.recognizer.Recognizer`, beam search with its 4-gram digit LM), loaded from
  the checkpoint notebook 11 saves (``$MMCOURSE_CACHE/speech/asr.pt``, or ``asr-fast.pt`` from a fast
  run). It was trained on five FSDD speakers: on their voices it is what chapter 11 measured; on
  other voices (espeak-ng's, a learner's microphone) it is much worse (chapter 11, section 8).
* **Words** (a free-form question): pocketsphinx with the help desk's own trigram language model
  (:func:`domain_lm`; its default 130k-word model misheard 9 words in 10 of the test questions).
* **Speaking**: :func:`speak` turns the reply into a 16 kHz WAV with espeak-ng.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmcourse.config import cache_dir
from mmcourse.speech.recognizer import SILENCE  # peak amplitude below which a recording is silence

KINDS = ("digits", "words")
QUESTIONS = ("where is my bag", "my flight was cancelled", "I want a refund for my ticket",
             "can I change my booking")  # espeak-ng test phrases for pocketsphinx (evaluate)
# The espeak-ng voice of the spoken test questions. pocketsphinx's acoustic model hears the default en-us
# voice poorly (word error rate 0.84 on 8 help-desk phrases even with a domain LM, 0.94 without), the f3
# variant far better (0.27 with a domain LM, 0.66 without); chosen among 4 variants on those phrases.
TEST_VOICE = "en-us+f3"
# The corpus's known replacements ("Cancelled Flightled" for "cancelled", ...), undone for the language model
_CORPUS_FIXES = ((r"reflight booking problems", "rebooking"), (r"flight booking problems", "booking"),
                 (r"cancelled flightlations?", "cancellations"), (r"cancelled flight(?:led|ed)", "cancelled"),
                 (r"cancelled flight", "cancel"), (r"late flightr", "later"), (r"late flight", "late"))


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


def lm_words(text: str) -> list[str]:
    """A sentence as lower-case words for the language model (handles, links and the corpus's
    replacements undone)."""
    t = text.lower()
    for pattern, repl in _CORPUS_FIXES:
        t = re.sub(pattern, repl, t)
    return re.findall(r"[a-z]+(?:'[a-z]+)?", re.sub(r"@\w+|http\S+|#", " ", t))


def domain_lm() -> Path:
    """The help desk's trigram language model for pocketsphinx (an ARPA file, written once and cached):
    the knowledge base's articles and the airline tweets of the corpus's train split (about 10,000
    sentences), restricted to the words of pocketsphinx's dictionary. Not the intent descriptions, nor any
    test phrase; two of :data:`QUESTIONS` ("where is my bag", "my flight was cancelled") do occur word for
    word in the tweets, as common phrases do."""
    from pocketsphinx import Decoder

    from mmcourse.assistant.knowledge import load_articles
    from mmcourse.data.intents import airline_tweets
    from mmcourse.data.posts import split_of
    from mmcourse.speech.arpa import WordNGram

    texts = [f"{a.title}. {a.text}" for a in load_articles()]
    sentences = [s for t in texts for s in re.split(r"[.?!]", t)]
    sentences += [t for t, k in airline_tweets() if split_of(k) == "train"]
    digest = hashlib.sha256(json.dumps(sentences).encode()).hexdigest()[:12]
    path = cache_dir() / "speech" / f"assistant-domain-3gram-{digest}.arpa"
    if not path.is_file():
        known = Decoder(loglevel="FATAL").lookup_word
        lm = WordNGram(3).fit([[w for w in lm_words(s) if known(w) is not None] for s in sentences])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(lm.arpa(), encoding="utf-8")
        os.replace(tmp, path)
    return path


class Listener:
    """``transcribe(wave [T], sample_rate, kind)`` -> :class:`Heard`. ``digits``: a recogniser with
    ``transcribe(wave, sample_rate) -> "0123"`` (None: digits are not available and ``kind="digits"``
    raises ``ValueError``); ``words``: one with ``transcribe(wave, sample_rate) -> "words ..."``."""

    name = "voice"

    def __init__(self, digits=None, words=None):
        from mmcourse.speech.baseline import PocketSphinx

        self.digits, self.words = digits, words or PocketSphinx(lm=domain_lm())

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
        hyps = [self.words.transcribe(espeak(q, voice=TEST_VOICE, sample_rate=16000), 16000) for q in QUESTIONS]
        out["words_wer_espeak"] = wer([q.lower() for q in QUESTIONS], hyps)
        return out


def speak(text: str, voice: str = "en-us", sample_rate: int = 16000) -> bytes:
    """The reply as 16-bit mono WAV bytes (espeak-ng, ``sample_rate`` Hz)."""
    from mmcourse.audio import to_wav_bytes
    from mmcourse.speech.baseline import espeak

    return to_wav_bytes(espeak(text, voice=voice, sample_rate=sample_rate), sample_rate)
