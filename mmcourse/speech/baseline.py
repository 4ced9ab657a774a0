"""Two independent systems: pocketsphinx (CMU's classic HMM recogniser, its bundled US-English
model, 16 kHz) as a baseline, and the espeak-ng synthesiser (``espeakng-loader``'s library and
voices) for an out-of-domain test set. Both run offline from their PyPI wheels."""

from __future__ import annotations

import ctypes
import functools
import os

import numpy as np
import torch

from mmcourse.audio import resample
from mmcourse.data.digit_strings import WORDS

DIGIT_GRAMMAR = ("#JSGF V1.0;\ngrammar digits;\npublic <digits> = ( " + " | ".join(WORDS + ["oh"]) + " )+ ;\n")
SPHINX_RATE = 16000


def normalise_words(text: str) -> str:
    """pocketsphinx's hypothesis, lower case, ``oh`` read as ``zero``, alternates (``two(2)``) merged."""
    words = [w.split("(")[0] for w in text.lower().split()]
    return " ".join("zero" if w == "oh" else w for w in words)


class PocketSphinx:
    """``PocketSphinx(grammar=False)``: the default trigram LM over ~130k words;
    ``grammar=True``: a JSGF grammar allowing only strings of the ten digit words (and "oh");
    ``lm=path``: an ARPA language model of one's own (e.g. :mod:`mmcourse.speech.arpa`'s).
    ``transcribe(wave, sample_rate)`` -> space-separated words (audio resampled to 16 kHz)."""

    def __init__(self, grammar: bool = False, lm: str | os.PathLike | None = None):
        try:
            from pocketsphinx import Decoder
        except ImportError as err:  # pragma: no cover - the dev extra installs it
            raise ImportError("pocketsphinx is not installed: pip install 'pocketsphinx>=5'") from err
        if grammar and lm is not None:
            raise ValueError("give either grammar=True or lm=, not both")
        self.grammar = grammar
        if grammar:
            self.decoder = Decoder(lm=None, loglevel="FATAL")
            self.decoder.add_jsgf_string("digits", DIGIT_GRAMMAR)
            self.decoder.activate_search("digits")
        elif lm is not None:
            if not os.path.isfile(lm):
                raise FileNotFoundError(f"language model {lm} not found: write one with mmcourse.speech.arpa")
            self.decoder = Decoder(lm=os.fspath(lm), loglevel="FATAL")
        else:
            self.decoder = Decoder(loglevel="FATAL")

    def transcribe(self, wave: torch.Tensor, sample_rate: int = 8000) -> str:
        w = torch.as_tensor(wave, dtype=torch.float32)
        if w.ndim != 1 or w.numel() == 0:
            raise ValueError(f"wave must be non-empty mono samples [T], got shape {tuple(w.shape)}")
        if sample_rate != SPHINX_RATE:
            w = resample(w, sample_rate, SPHINX_RATE)
        pcm = (w.clamp(-1, 1) * 32767).to(torch.int16).numpy().tobytes()
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return normalise_words(hyp.hypstr) if hyp is not None else ""


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@functools.cache
def _espeak() -> tuple[ctypes.CDLL, int, list, object]:
    try:
        import espeakng_loader
    except ImportError as err:  # pragma: no cover
        raise ImportError("espeakng-loader is not installed: pip install espeakng-loader") from err
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    data_parent = os.path.dirname(espeakng_loader.get_data_path())
    rate = lib.espeak_Initialize(2, 0, data_parent.encode(), 0)  # 2: AUDIO_OUTPUT_SYNCHRONOUS
    if rate <= 0:
        raise RuntimeError(f"espeak-ng did not initialise (data folder {data_parent})")
    chunks: list[np.ndarray] = []

    def on_audio(wav, n, _events):
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    cb = _CALLBACK(on_audio)  # kept alive with the library
    lib.espeak_SetSynthCallback(cb)
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    return lib, rate, chunks, cb


def espeak(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50,
           sample_rate: int = 8000) -> torch.Tensor:
    """Speak ``text`` with espeak-ng: mono float32 ``[T]`` at ``sample_rate`` (from its 22,050 Hz).

    ``voice``: a language, optionally with a variant (``"en-us"``, ``"en-us+f3"``, ``"en+m3"``);
    ``rate``: words per minute (80-450); ``pitch``: 0-100."""
    if not text.strip():
        raise ValueError("text is empty: nothing to speak")
    lib, native, chunks, _ = _espeak()
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"espeak-ng has no voice {voice!r}; try 'en-us', 'en-us+f3' or 'en+m3'")
    lib.espeak_SetParameter(1, int(rate), 0)  # espeakRATE
    lib.espeak_SetParameter(3, int(pitch), 0)  # espeakPITCH
    chunks.clear()
    raw = text.encode()
    err = lib.espeak_Synth(raw, len(raw) + 1, 0, 1, 0, 0, None, None)  # POS_CHARACTER, espeakCHARS_AUTO
    if err != 0 or not chunks:
        raise RuntimeError(f"espeak-ng failed to speak {text!r} (error {err})")
    wave = torch.from_numpy(np.concatenate(chunks).astype(np.float32) / 32768.0)
    return resample(wave, native, sample_rate) if sample_rate != native else wave


def transcribe_cached(name: str, waves: list[torch.Tensor], transcribe) -> list[str]:
    """``[transcribe(w) for w in waves]``, cached as JSON under ``$MMCOURSE_CACHE/speech/`` by ``name``
    and the waves' bytes (pocketsphinx is deterministic and slow: a rebuild reads its answers)."""
    import hashlib
    import json

    from mmcourse.config import cache_dir

    h = hashlib.sha256()
    for w in waves:
        h.update(w.contiguous().numpy().tobytes())
    path = cache_dir() / "speech" / f"{name}-{h.hexdigest()[:16]}.json"
    if path.is_file():
        return json.loads(path.read_text())
    out = [transcribe(w) for w in waves]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, path)
    return out
