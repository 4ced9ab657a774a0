"""Audio: load, pad/crop, resample, batched STFT / Mel / MFCC, augmentation, feature cache.

Waveforms are float32 tensors ``[..., T]`` (any leading batch dimensions). Every
transform is batched and runs on whatever device its input is on.
The defaults suit FSDD (8 kHz): 32 ms windows (``n_fft=256``), 10 ms hops (``hop_length=80``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio

from mmcourse.config import cache_dir, load_or_compute


def load(path: str | Path | bytes, sample_rate: int | None = None, name: str = "the upload"
         ) -> tuple[torch.Tensor, int]:
    """Read an audio file with soundfile: ``(wave [T] float32 mono, sample_rate)``.

    ``path`` is a file, or the file's bytes (e.g. from an ipywidgets ``FileUpload``; ``name`` then
    names it in errors). Multi-channel files are averaged to mono; ``sample_rate`` resamples if given.
    """
    if isinstance(path, (bytes, bytearray, memoryview)):
        source, label = io.BytesIO(bytes(path)), name
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No audio file at {path}")
        source, label = str(path), str(path)
    try:
        data, sr = sf.read(source, dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        reason = getattr(err, "error_string", str(err)).rstrip(".")
        raise ValueError(f"{label} could not be read as audio (libsndfile: {reason}); is it corrupt? "
                         f"Use a WAV, FLAC or OGG file") from err
    wave = torch.from_numpy(data.mean(axis=1))
    if sample_rate is not None and sample_rate != sr:
        wave, sr = resample(wave, sr, sample_rate), sample_rate
    return wave, sr


def pad_or_crop(wave: torch.Tensor, length: int, align: str = "start") -> torch.Tensor:
    """Zero-pad or crop the last dimension to ``length`` samples. ``align``: start or center."""
    t = wave.shape[-1]
    if t == length:
        return wave
    if t > length:
        s = 0 if align == "start" else (t - length) // 2
        return wave[..., s : s + length]
    left = 0 if align == "start" else (length - t) // 2
    return torch.nn.functional.pad(wave, (left, length - t - left))


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited resampling (torchaudio's sinc interpolation), ``[..., T] -> [..., T']``."""
    return torchaudio.functional.resample(wave, orig_sr, new_sr)


CHUNK = 64
FEATURES_VERSION = 3  # bump when the feature code changes: cached features are recomputed


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of a spectral feature; together they are the cache key.

    ``kind``: ``"stft"`` (power spectrogram ``[F = n_fft//2+1, frames]``), ``"mel"``
    (power Mel spectrogram ``[n_mels, frames]``), ``"logmel"`` (Mel in dB) or ``"mfcc"``
    (``[n_mfcc, frames]``). Mel filters use the Slaney scale and norm, like librosa.
    """

    kind: str = "logmel"
    sample_rate: int = 8000
    n_fft: int = 256
    hop_length: int = 80
    n_mels: int = 40
    n_mfcc: int = 13
    f_min: float = 0.0
    f_max: float | None = None
    top_db: float | None = 80.0

    def key(self) -> str:
        """Cache key: the parameters plus the implementation's version."""
        fields = {**asdict(self), "version": FEATURES_VERSION}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


class Features(torch.nn.Module):
    """Batched spectral features: mono waveforms ``[T]`` or ``[B, T]`` -> ``[C, frames]`` or ``[B, C, frames]``.

    ``frames = T // hop_length + 1`` (centred windows). ``C`` depends on ``kind``
    (see :class:`FeatureConfig`). Runs on the device of its input; move the module
    with ``.to(device)`` first.
    """

    def __init__(self, config: FeatureConfig | None = None, **kwargs):
        super().__init__()
        self.config = cfg = config or FeatureConfig(**kwargs)
        if cfg.kind not in ("stft", "mel", "logmel", "mfcc"):
            raise ValueError(f"kind must be stft/mel/logmel/mfcc, got {cfg.kind!r}")
        n_freqs = cfg.n_fft // 2 + 1
        self.register_buffer("window", torch.hann_window(cfg.n_fft))  # periodic Hann, as librosa
        if cfg.kind != "stft":  # Slaney-scale, Slaney-normalised triangles (librosa's default): [F, n_mels]
            fb = torchaudio.functional.melscale_fbanks(
                n_freqs, cfg.f_min, cfg.f_max or cfg.sample_rate / 2, cfg.n_mels, cfg.sample_rate,
                norm="slaney", mel_scale="slaney",
            )  # fmt: skip
            self.register_buffer("mel_fb", fb)
        if cfg.kind == "mfcc":  # DCT-II, orthonormal: [n_mels, n_mfcc]
            self.register_buffer("dct", torchaudio.functional.create_dct(cfg.n_mfcc, cfg.n_mels, "ortho"))

    def power_to_db(self, power: torch.Tensor) -> torch.Tensor:
        """``10 log10(power)``, floored at ``top_db`` below each example's own maximum (as librosa).

        torchaudio's AmplitudeToDB takes the maximum over a whole 3-D batch at once, so a loud
        example would change a quiet one's features; here every ``[C, frames]`` stands alone.
        """
        db = 10.0 * torch.log10(power.clamp_min(1e-10))
        if self.config.top_db is not None:
            floor = db.amax(dim=(-2, -1), keepdim=True) - self.config.top_db
            db = torch.maximum(db, floor)
        return db

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if not isinstance(wave, torch.Tensor) or not wave.is_floating_point():
            raise ValueError(f"expected float waveforms [T] or [B, T], got "
                             f"{getattr(wave, 'dtype', type(wave).__name__)} (convert with wave.float())")
        if wave.ndim not in (1, 2):
            hint = (" For multi-channel audio [B, C, T], mix down to mono first: wave.mean(dim=1)."
                    if wave.ndim == 3 else "")
            raise ValueError(f"expected mono waveforms [T] or [B, T], got shape {tuple(wave.shape)}.{hint}")
        if wave.shape[-1] == 0 or wave.numel() == 0:
            raise ValueError(f"the waveform is empty (shape {tuple(wave.shape)}): there is nothing to "
                             "analyse; check the file, or pad_or_crop it to a fixed length first")
        lead, t = wave.shape[:-1], wave.shape[-1]
        flat = wave.reshape(-1, t)  # [N, T]
        # Chunks of 64 clips keep the intermediate spectra in cache: ~2x faster than one huge batch.
        out = torch.cat([self._features(chunk) for chunk in flat.split(CHUNK)])  # [N, C, frames]
        return out.reshape(*lead, *out.shape[-2:])

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, T] -> [n, C, frames]``: power STFT, then Mel, dB and DCT as ``kind`` asks.

        The STFT is written out (zero-pad by ``n_fft // 2``, frame, window, ``rfft``): bit for bit
        ``torch.stft(center=True, pad_mode="constant")``, but it keeps the spectra frame-major
        ``[n, frames, F]``, so that the Mel and DCT products are single matrix products (torch.stft
        returns ``[n, F, frames]`` views that the products had to transpose)."""
        cfg = self.config
        pad = cfg.n_fft // 2
        frames = F.pad(x, (pad, pad)).unfold(-1, cfg.n_fft, cfg.hop_length) * self.window  # [n, frames, n_fft]
        spec = torch.fft.rfft(frames)  # [n, frames, F]
        out = spec.real.square()
        out += spec.imag.square()  # power
        if cfg.kind == "stft":
            return out.transpose(-1, -2)  # [n, F, frames]
        out = out @ self.mel_fb  # [n, frames, n_mels]
        if cfg.kind == "mel":
            return out.transpose(-1, -2)
        out = self.power_to_db(out)  # the floor uses each example's maximum over all its bins
        if cfg.kind == "mfcc":
            out = out @ self.dct  # [n, frames, n_mfcc]
        return out.transpose(-1, -2)

    def extra_repr(self) -> str:
        return str(self.config)


def stft(wave: torch.Tensor, n_fft: int = 256, hop_length: int = 80) -> torch.Tensor:
    """Power spectrogram ``[..., n_fft//2+1, frames]`` (Hann window, centred)."""
    return Features(FeatureConfig("stft", n_fft=n_fft, hop_length=hop_length)).to(wave.device)(wave)


def mel_centres_hz(config: FeatureConfig) -> torch.Tensor:
    """Centre frequency (Hz) of each Mel band of ``config``: ``[n_mels]`` (Slaney scale, as the filters).

    Slaney's scale is linear below 1 kHz (200/3 Hz per Mel) and logarithmic above; the band
    edges are spaced evenly in Mel between ``f_min`` and ``f_max``.
    """
    f_sp, log_hz, log_mel, step = 200.0 / 3, 1000.0, 15.0, torch.log(torch.tensor(6.4)).item() / 27.0

    def to_mel(f: torch.Tensor) -> torch.Tensor:
        return torch.where(f < log_hz, f / f_sp, log_mel + torch.log(f.clamp_min(log_hz) / log_hz) / step)

    def to_hz(m: torch.Tensor) -> torch.Tensor:
        return torch.where(m < log_mel, m * f_sp, log_hz * torch.exp(step * (m - log_mel)))

    lo, hi = to_mel(torch.tensor([config.f_min, config.f_max or config.sample_rate / 2], dtype=torch.float64))
    return to_hz(torch.linspace(float(lo), float(hi), config.n_mels + 2, dtype=torch.float64))[1:-1].float()


def compute_features(
    waves: torch.Tensor, config: FeatureConfig, batch_size: int = 512, device: torch.device | None = None
) -> torch.Tensor:
    """Features of ``waves [N, T]`` in batches on ``device``: ``[N, C, frames]`` float32 on the CPU."""
    device = device or waves.device
    f = Features(config).to(device)
    with torch.no_grad():
        return torch.cat([f(waves[i : i + batch_size].to(device)).cpu() for i in range(0, len(waves), batch_size)])


def cached_features(name: str, waves: torch.Tensor, config: FeatureConfig, **kwargs) -> torch.Tensor:
    """:func:`compute_features`, cached on disk under ``cache_dir()`` by name, config and input.

    The key hashes the feature parameters and the waveforms' bytes, so changing either
    recomputes; a chapter's second run reads ``[N, C, frames]`` from disk instead.
    """
    h = hashlib.sha256(waves.contiguous().numpy().tobytes()).hexdigest()[:12]
    path = cache_dir() / "features" / f"{name}-{config.kind}-{config.key()}-{h}.pt"
    return load_or_compute(path, lambda: compute_features(waves, config, **kwargs))


# ---- augmentation -------------------------------------------------------------------------


def add_noise(wave: torch.Tensor, snr_db: float, generator: torch.Generator | None = None,
              lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Add white noise at a signal-to-noise ratio of ``snr_db``, per example: ``[..., T] -> [..., T]``.

    The powers are averaged over all ``T`` samples, or, with ``lengths [...]`` (int, the samples
    before zero padding), over the first ``lengths[i]`` samples only: the SNR *of the speech*.
    Either way the noise fills all ``T`` samples, padding included.
    """
    noise = torch.randn(wave.shape, generator=generator, device="cpu").to(wave.device)
    if lengths is None:
        p_signal = wave.pow(2).mean(-1, keepdim=True)
        p_noise = noise.pow(2).mean(-1, keepdim=True)
    else:
        lengths = torch.as_tensor(lengths, device=wave.device)
        if lengths.shape != wave.shape[:-1]:
            raise ValueError(f"lengths must have shape {tuple(wave.shape[:-1])} (one per wave), "
                             f"got {tuple(lengths.shape)}")
        if (lengths < 1).any() or (lengths > wave.shape[-1]).any():
            raise ValueError(f"lengths must lie in 1..{wave.shape[-1]} (the samples before padding)")
        speech = torch.arange(wave.shape[-1], device=wave.device) < lengths.unsqueeze(-1)  # [..., T]
        n = lengths.unsqueeze(-1).to(wave.dtype)  # [..., 1]
        p_signal = (wave.pow(2) * speech).sum(-1, keepdim=True) / n
        p_noise = (noise.pow(2) * speech).sum(-1, keepdim=True) / n
    return wave + noise * torch.sqrt(p_signal.clamp_min(1e-10) / (p_noise * 10 ** (snr_db / 10)))


def time_shift(wave: torch.Tensor, shift: int) -> torch.Tensor:
    """Shift right by ``shift`` samples (left if negative), filling with zeros."""
    if shift == 0:
        return wave
    out = torch.zeros_like(wave)
    if shift > 0:
        out[..., shift:] = wave[..., :-shift]
    else:
        out[..., :shift] = wave[..., -shift:]
    return out


def change_speed(wave: torch.Tensor, factor: float, sample_rate: int = 8000) -> torch.Tensor:
    """Play ``factor`` times faster (pitch moves too), by resampling: ``[..., T] -> [..., ~T/factor]``."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    new_sr = round(sample_rate / factor)
    return resample(wave, sample_rate, new_sr)


def find_bad_files(paths: list[Path], silence_rms: float = 1e-4) -> dict[str, list[Path]]:
    """Data cleaning: which files do not decode (``corrupt``) or are (near-)silent (``silent``)."""
    bad: dict[str, list[Path]] = {"corrupt": [], "silent": []}
    for p in paths:
        try:
            wave, _ = load(p)
        except ValueError:
            bad["corrupt"].append(Path(p))
            continue
        if wave.numel() == 0 or wave.pow(2).mean().sqrt() < silence_rms:
            bad["silent"].append(Path(p))
    return bad


Transform = Callable[[torch.Tensor], torch.Tensor]


def to_wav_bytes(wave: torch.Tensor, sample_rate: int) -> bytes:
    """A mono waveform ``[T]`` as 16-bit WAV bytes (for ``ipywidgets.Audio`` players)."""
    import io

    buf = io.BytesIO()
    sf.write(buf, wave.detach().cpu().clamp(-1, 1).numpy(), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_wav(path: str | Path, wave: torch.Tensor, sample_rate: int) -> Path:
    """Write a mono waveform ``[T]`` as a 16-bit WAV file (atomically: temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(to_wav_bytes(wave, sample_rate))
    os.replace(tmp, path)
    return path
