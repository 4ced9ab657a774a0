"""The speech adapters: what the customer said (digits or words), and the reply spoken back.

* **Digits** (a spoken booking or bag-tag number): chapter 11's CTC recogniser
  (:class:`mmcourse.speech.recognizer.Recognizer`, beam search with its 4-gram digit LM), trained by
  :func:`train_digit_recognizer` with chapter 11's recipe on four times its data for twice its epochs
  (cached under ``$MMCOURSE_CACHE/speech/``). It knows five FSDD speakers: on their voices it reads most
  numbers exactly; on other voices (espeak-ng's, a learner's microphone) it is much worse (chapter 11, section 8).
* **Words** (a free-form question): pocketsphinx with the help desk's own trigram language model
  (:func:`domain_lm`; its default 130k-word model misheard 9 words in 10 of the test questions).
* **Speaking**: :func:`speak` turns the reply into a 16 kHz WAV with espeak-ng.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmcourse.config import cache_dir, offset_seed, pick
from mmcourse.speech.recognizer import SILENCE  # peak amplitude below which a recording is silence
from mmcourse.train import load_checkpoint, save_checkpoint

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


N_VAL = 200  # validation utterances (takes 5-9 of the seen speakers): best epoch, then alpha and beta


def digit_training_size() -> dict[str, int]:
    """The assistant's digit recogniser: chapter 11's recipe with 4,000 training utterances for 20 epochs
    (756 s on one thread, measured 2026-12-03; once: it is cached); fast mode: chapter 11's full-build
    sizes, 1,000 for 10 epochs (103 s)."""
    return pick(fast={"n_train": 1000, "epochs": 10}, full={"n_train": 4000, "epochs": 20})


def digit_checkpoint(n_train: int, epochs: int, seed: int = 0) -> Path:
    """Where :func:`train_digit_recognizer` caches its model (one file per size and seed + MMCOURSE_SEED)."""
    return cache_dir() / "speech" / f"assistant-asr-{n_train}-{epochs}-{offset_seed(seed)}.pt"


def _digit_lm():
    from mmcourse.data.digit_strings import digit_strings
    from mmcourse.speech.lm import NGramLM

    return NGramLM(order=4).fit(digit_strings(20_000, seed=11))  # chapter 11's LM: 20,000 recipe strings


def train_digit_recognizer(n_train: int = 1000, epochs: int = 10, seed: int = 0, cache: bool = True):
    """A spoken-number recogniser: chapter 11's model and recipe
    (:func:`mmcourse.speech.training.train_recognizer`) on ``n_train`` connected-digit utterances of its
    five seen FSDD speakers, the best of ``epochs`` on validation, its 4-gram LM's weight and word bonus
    tuned on validation (:func:`~mmcourse.speech.training.tune_fusion`). Cached by size and seed
    (:func:`digit_checkpoint`); returns a :class:`~mmcourse.speech.recognizer.Recognizer`."""
    from mmcourse.data.digit_strings import build_utterances
    from mmcourse.speech.recognizer import Recognizer
    from mmcourse.speech.training import train_recognizer, tune_fusion

    if n_train < 1 or epochs < 1:
        raise ValueError(f"n_train and epochs must be >= 1, got {n_train} and {epochs}")
    path = digit_checkpoint(n_train, epochs, seed)
    if cache and path.is_file():
        return load_digit_recognizer(path)
    val = build_utterances("val", N_VAL)
    t0 = time.perf_counter()
    model, hist = train_recognizer(build_utterances("train", n_train), val, epochs=epochs, seed=seed,
                                   device=torch.device("cpu"))
    seconds = time.perf_counter() - t0
    rec = Recognizer(model.eval(), _digit_lm())
    rec.alpha, rec.beta, _ = tune_fusion(rec, rec.emissions([u.wave for u in val]), [u.digits for u in val])
    if cache:
        save_checkpoint({"model": model.state_dict(), "alpha": rec.alpha, "beta": rec.beta, "seconds": seconds,
                         "best_val_loss": float(hist.best["val_loss"]), "best_epoch": int(hist.best_epoch)}, path)
    return rec


def load_digit_recognizer(path: Path):
    """A recogniser from a checkpoint of :func:`train_digit_recognizer` or notebook 11
    (``$MMCOURSE_CACHE/speech/asr.pt``): its model with its tuned LM weight and bonus."""
    from mmcourse.models.asr import CTCRecognizer
    from mmcourse.speech.recognizer import Recognizer

    if not Path(path).is_file():
        raise FileNotFoundError(f"no digit recogniser at {path}: train one with train_digit_recognizer(), or "
                                "run notebooks/11_project_speech_recognition.ipynb once (it saves asr.pt)")
    model = CTCRecognizer()
    state = load_checkpoint(path, model)
    return Recognizer(model.eval(), _digit_lm(), float(state.get("alpha", 0.5)), float(state.get("beta", 1.0)))


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
                raise ValueError("spoken numbers need a digit recogniser: Listener(digits=train_digit_recognizer())")
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
