"""The HTTP service: a FastAPI app serving an ONNX image+audio model, with micro-batching.

    POST /predict   multipart form: ``image`` (PNG, 28x28, grey or colour) + ``audio`` (WAV)
                    -> {"class", "label", "probabilities", "model_version", "latency_ms", "batch_size"}
    GET  /health    -> {"status": "ok", "model_version", "queued", "max_queue", "max_batch"}
    GET  /          -> a plain HTML page to upload a PNG and a WAV and see the answer

Requests are decoded and checked on the event loop; each valid pair then waits in the
:class:`Batcher`, which runs the model on up to ``max_batch`` requests that arrived within
``max_wait_ms`` of the first: one forward pass for many requests (``max_batch=1``: no batching).
At most ``max_queue`` requests wait at once; beyond that the service answers 503 with a
``Retry-After`` header at once instead of queueing without bound.

Bad input always gets a 4xx and a JSON ``{"error": ...}`` naming the field and the fix:
missing field (422), not multipart (415), not a PNG / not a WAV (415), corrupt file (400),
wrong image size (422), audio over ``max_audio_seconds`` (422), body over ``max_body_bytes`` (413).

Run it: ``python -m mmcourse.deploy.serve --model model.onnx`` (listens on 127.0.0.1:8000), or
``make serve``. The model is an ONNX file from ``mmcourse.deploy.pipeline`` carrying its metadata.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from mmcourse.deploy.export import META_KEY, read_metadata, session
from mmcourse.deploy.page import PAGE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEFAULT_MODEL = "deploy/av_service.onnx"  # under MMCOURSE_CACHE (the chapter writes it there)
TOO_LARGE_HINT = "send one 28x28 PNG and a WAV of at most a few seconds"  # what a 413 tells the client to send instead


class BadInput(Exception):
    """A client error: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Limits:
    max_body_bytes: int = 1_000_000
    max_audio_seconds: float = 2.0
    max_batch: int = 32
    max_wait_ms: float = 2.0
    max_queue: int = 64


def _version(path: Path, name: str) -> str:
    return f"{name}@{hashlib.sha256(path.read_bytes()).hexdigest()[:10]}"


class Model:
    """What the service needs of a model: its metadata and ``predict``.

    ``predict(images [B,1,H,W] float32 in [0,1], waves [B,T] float32) -> probabilities [B, K]``:
    the power spectrogram is computed here with NumPy (:func:`power_spectrogram`), the rest
    (log-Mel, standardisation, the network) by the runtime: ONNX Runtime (:class:`OnnxModel`) or
    eager PyTorch (:class:`TorchModel`).
    """

    meta: dict
    version: str
    runtime: str

    def _setup(self, meta: dict, version: str) -> None:
        self.meta, self.version = meta, version
        self.classes: list[str] = meta["classes"]
        self.image_size: int = meta["image_size"]
        self.sample_rate: int = meta["sample_rate"]
        self.samples: int = meta["samples"]

    def logits(self, images: np.ndarray, power: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, images: np.ndarray, waves: np.ndarray) -> np.ndarray:
        power = power_spectrogram(waves, self.meta["n_fft"], self.meta["hop_length"])  # [B, F, frames]
        logits = self.logits(images, power)  # [B, K]
        z = np.exp(logits - logits.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)


class OnnxModel(Model):
    """An ONNX file (with its metadata) run by ONNX Runtime on the CPU."""

    runtime = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 1):
        path = _existing(path)
        self.session = session(path, threads)
        meta = read_metadata(self.session)
        if not meta:
            raise ValueError(f"{path} has no '{META_KEY}' metadata (export it with mmcourse.deploy.pipeline.export_service)")
        self._setup(meta, _version(path, meta.get("name", path.stem)))
        self.names = [i.name for i in self.session.get_inputs()]

    def logits(self, images: np.ndarray, power: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.names[0]: images, self.names[1]: power})[0]


class TorchModel(Model):
    """The same pipeline in eager PyTorch, from a checkpoint loaded with ``weights_only=True``.

    The checkpoint (``mmcourse.deploy.pipeline.save_pipeline``) holds the pipeline's state dict,
    its metadata and the fusion method to rebuild it with.
    """

    runtime = "torch"

    def __init__(self, path: str | Path, threads: int = 1):
        import torch

        from mmcourse.deploy.pipeline import load_pipeline

        path = _existing(path)
        torch.set_num_threads(threads)
        self.pipeline, meta = load_pipeline(path)
        self._setup(meta, _version(path, meta.get("name", path.stem)))

    def logits(self, images: np.ndarray, power: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.pipeline(torch.from_numpy(images), torch.from_numpy(power)).numpy()


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}: run notebooks/12_deployment.ipynb (it exports one "
                                f"to $MMCOURSE_CACHE/{DEFAULT_MODEL}) or pass --model / MMCOURSE_MODEL")
    return path


def load_model(path: str | Path, threads: int = 1) -> Model:
    """``.onnx``: :class:`OnnxModel`; ``.pt``: :class:`TorchModel`."""
    if Path(path).suffix == ".pt":
        return TorchModel(path, threads)
    return OnnxModel(path, threads)


# ---- decoding and checks (each raises BadInput) --------------------------------------------------


def decode_png(data: bytes, size: int) -> np.ndarray:
    """PNG bytes -> ``[1, size, size]`` float32 in [0, 1] (converted to grey)."""
    from PIL import Image, UnidentifiedImageError

    if not data.startswith(PNG_MAGIC):
        raise BadInput(415, "field 'image' must be a PNG file (its bytes do not start with the PNG signature)")
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size  # read from the header, before decoding the pixels
        if (w, h) != (size, size):
            raise BadInput(422, f"field 'image' must be {size}x{size} pixels, got {w}x{h}: resize it first")
        pixels = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except BadInput:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise BadInput(400, f"field 'image' is a corrupt PNG ({type(err).__name__}: {err})") from err
    return pixels[None]  # [1, size, size]


def encode_png(pixels) -> bytes:
    """An image as PNG bytes (what a client sends): ``[H, W]`` or ``[1, H, W]`` floats in [0, 1] (grey),
    or ``uint8`` ``[H, W]`` (grey) / ``[H, W, 3]`` (RGB). :func:`decode_png` reads a grey one back.
    """
    from PIL import Image

    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]  # [H, W]
    if a.dtype != np.uint8:
        a = (np.clip(a, 0.0, 1.0) * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def read_wav(data: bytes, max_seconds: float, field: str = "audio", hint: str = "send one spoken digit"
             ) -> tuple[np.ndarray, int]:
    """WAV bytes -> ``(wave [T] float32 mono, sample rate)``, checked: the RIFF/WAVE header (415), a
    readable file (400), at most ``max_seconds`` (422, read from the header before decoding) and at
    least one sample (422). Each error names ``field``; ``hint`` says what to send instead."""
    import soundfile as sf

    if not (data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
        raise BadInput(415, f"field {field!r} must be a WAV file (RIFF/WAVE header not found)")
    try:
        info = sf.info(io.BytesIO(data))
        seconds = info.frames / info.samplerate
        if seconds > max_seconds:
            raise BadInput(422, f"field {field!r} is {seconds:.2f} s long; the limit is {max_seconds:g} s: {hint}")
        wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except BadInput:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise BadInput(400, f"field {field!r} is a corrupt WAV ({err})") from err
    wave = wave.mean(axis=1)  # [T] mono
    if len(wave) == 0:
        raise BadInput(422, f"field {field!r} holds no samples")
    return wave, sr


def decode_wav(data: bytes, sample_rate: int, samples: int, max_seconds: float) -> np.ndarray:
    """WAV bytes -> ``[samples]`` float32 mono at ``sample_rate`` (resampled, then padded or cropped)."""
    wave, sr = read_wav(data, max_seconds)
    if sr != sample_rate:
        from scipy.signal import resample_poly

        g = np.gcd(sr, sample_rate)
        wave = resample_poly(wave, sample_rate // g, sr // g).astype(np.float32)
    out = np.zeros(samples, dtype=np.float32)
    out[: min(samples, len(wave))] = wave[:samples]
    return out


def power_spectrogram(waves: np.ndarray, n_fft: int = 256, hop: int = 80) -> np.ndarray:
    """``|STFT|^2`` of ``waves [B, T]``: ``[B, n_fft // 2 + 1, T // hop + 1]`` float32.

    The same as ``torch.stft(center=True, pad_mode="constant", window=hann_window(n_fft))``
    (``mmcourse.audio.stft``): zero-pad ``n_fft // 2`` each side, frames every ``hop`` samples.
    """
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic Hann
    out = np.empty((len(waves), n_fft // 2 + 1, waves.shape[1] // hop + 1), dtype=np.float32)
    for s in range(0, len(waves), 4):  # 4 clips at a time stay in cache: linear cost in the batch
        padded = np.pad(waves[s : s + 4], ((0, 0), (n_fft // 2, n_fft // 2)))  # [b, T + n_fft]
        frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop]  # [b, frames, n_fft]
        spec = np.fft.rfft(frames * window, axis=-1)  # [b, frames, F]
        out[s : s + 4] = (spec.real**2 + spec.imag**2).transpose(0, 2, 1)  # [b, F, frames]
    return out


# ---- micro-batching -------------------------------------------------------------------------------


class QueueFull(Exception):
    pass


@dataclass
class _Item:
    image: np.ndarray
    wave: np.ndarray
    future: asyncio.Future = field(repr=False)


class Batcher:
    """One forward pass for many requests.

    When the model is free, the batch is every request already waiting (those that arrived while
    the last batch ran), topped up with any arriving within ``max_wait_ms`` of the first, up to
    ``max_batch``. ``max_wait_ms=0``: never wait, batch only what queued up. The model runs in one
    worker thread, so the event loop keeps reading requests meanwhile.
    """

    def __init__(self, model: Model, limits: Limits):
        self.model, self.limits = model, limits
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.waiting = 0  # accepted, not yet answered
        self.batches = 0
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=True)

    async def submit(self, image: np.ndarray, wave: np.ndarray) -> tuple[np.ndarray, int]:
        """``(probabilities [K], batch size)``; raises :class:`QueueFull` when ``max_queue`` wait already."""
        if self.waiting >= self.limits.max_queue:
            raise QueueFull
        self.waiting += 1
        try:
            fut = asyncio.get_running_loop().create_future()
            self.queue.put_nowait(_Item(image, wave, fut))
            return await fut
        finally:
            self.waiting -= 1

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            deadline = loop.time() + self.limits.max_wait_ms / 1000
            while len(items) < self.limits.max_batch:
                if not self.queue.empty():  # whatever arrived while the last batch ran
                    items.append(self.queue.get_nowait())
                    continue
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:  # noqa: UP041 (Python 3.10)
                    break
            items = [it for it in items if not it.future.done()]  # the client may have gone
            if not items:
                continue
            images = np.stack([it.image for it in items])  # [B, 1, H, W]
            waves = np.stack([it.wave for it in items])  # [B, T]
            try:
                probs = await loop.run_in_executor(self.executor, self.model.predict, images, waves)
            except Exception as err:  # a model failure is the server's fault: 500, but keep serving
                for it in items:
                    if not it.future.done():
                        it.future.set_exception(err)
                continue
            self.batches += 1
            for it, p in zip(items, probs, strict=True):
                if not it.future.done():
                    it.future.set_result((p, len(items)))


# ---- the app --------------------------------------------------------------------------------------


class BodyLimit:
    """ASGI middleware: answer 413 to a request body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app, max_bytes: int, hint: str | None = None):
        self.app, self.max_bytes, self.hint = app, max_bytes, hint or TOO_LARGE_HINT

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _send_json(send, 413, {"error": _too_large(self.max_bytes, int(declared), self.hint)})
        seen, started = 0, False

        async def limited_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return msg

        async def tracking_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, 413, {"error": _too_large(self.max_bytes, seen, self.hint)})


def _too_large(max_bytes: int, n: int, hint: str | None = None) -> str:
    return f"request body is over the limit of {max_bytes:,} bytes (got {n:,}+): {hint or TOO_LARGE_HINT}"


class _TooLarge(Exception):
    pass


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


def add_error_handlers(app: FastAPI) -> None:
    """Every client error as ``{"error": message}`` with its status (never an HTML page or a 500)."""

    @app.exception_handler(BadInput)
    async def bad_input(request, err: BadInput):
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.exception_handler(HTTPException)
    async def http_error(request, err: HTTPException):
        return JSONResponse({"error": str(err.detail)}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, err: RequestValidationError):
        return JSONResponse({"error": "invalid request", "detail": err.errors()}, status_code=422)


async def read_files(request: Request, wanted: dict[str, str], max_body_bytes: int,
                     optional: tuple[str, ...] = (), hint: str | None = None) -> dict[str, bytes | str]:
    """The multipart upload's files ``{field: bytes}`` (``wanted``: field -> kind, e.g. ``{"audio": "WAV"}``)
    and its text fields named in ``optional`` (``{field: str}`` when sent). Not multipart: 415; body
    too large while streaming: 413 (with ``hint``); malformed: 400; a wanted file missing: 422 naming the
    fields sent."""
    ctype = request.headers.get("content-type", "")
    what = " and ".join(f"{name!r} ({kind})" for name, kind in wanted.items())
    if not ctype.startswith("multipart/form-data"):
        raise BadInput(415, f"send multipart/form-data with field{'s' * (len(wanted) > 1)} {what}, "
                            f"got content type {ctype or 'none'!r}")
    try:
        form = await request.form(max_files=len(wanted), max_fields=len(wanted) + len(optional) + 2)
    except _TooLarge as err:  # streamed past the limit (no Content-Length header)
        raise BadInput(413, _too_large(max_body_bytes, max_body_bytes, hint)) from err
    except Exception as err:  # malformed multipart: the client's fault
        raise BadInput(400, f"could not parse the multipart body ({err})") from err
    try:
        out: dict[str, bytes | str] = {}
        for name in wanted:
            part = form.get(name)
            if not isinstance(part, UploadFile):
                raise BadInput(422, f"missing field {name!r}: send {what} as file{'s' * (len(wanted) > 1)}, "
                                    f"got fields {sorted(form.keys())}")
            out[name] = await part.read()
        for name in optional:
            value = form.get(name)
            if isinstance(value, str):
                out[name] = value
    finally:
        await form.close()
    return out


def create_app(model: Model | str | Path, limits: Limits | None = None):
    """The FastAPI app serving ``model`` (a :class:`Model`, or a ``.onnx`` / ``.pt`` path)."""
    model = model if isinstance(model, Model) else load_model(model)
    limits = limits or Limits()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.batcher = Batcher(model, limits)
        app.state.batcher.start()
        yield
        await app.state.batcher.stop()

    app = FastAPI(title="mmcourse digit service", lifespan=lifespan)
    app.state.model, app.state.limits = model, limits

    add_error_handlers(app)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    @app.get("/health")
    async def health() -> dict:
        b: Batcher = app.state.batcher
        return {"status": "ok", "model_version": model.version, "runtime": model.runtime, "queued": b.waiting,
                "max_queue": limits.max_queue, "max_batch": limits.max_batch, "batches": b.batches}

    @app.post("/predict")
    async def predict(request: Request):
        t0 = time.perf_counter()
        files = await read_files(request, {"image": "PNG", "audio": "WAV"}, limits.max_body_bytes)
        image = decode_png(files["image"], model.image_size)
        wave = decode_wav(files["audio"], model.sample_rate, model.samples, limits.max_audio_seconds)
        try:
            probs, batch = await app.state.batcher.submit(image, wave)
        except QueueFull:
            return JSONResponse({"error": f"the service is busy ({limits.max_queue} requests waiting): retry in 1 s"},
                                status_code=503, headers={"Retry-After": "1"})
        k = int(np.argmax(probs))
        return {"class": k, "label": model.classes[k], "probabilities": [round(float(p), 6) for p in probs],
                "model_version": model.version, "latency_ms": round((time.perf_counter() - t0) * 1000, 3),
                "batch_size": batch}

    return BodyLimit(app, limits.max_body_bytes)


def default_model_path() -> Path:
    env = os.environ.get("MMCOURSE_MODEL")
    if env:
        return Path(env)
    from mmcourse.config import cache_dir

    return cache_dir() / DEFAULT_MODEL


def app_from_env():
    """``uvicorn --factory mmcourse.deploy.serve:app_from_env``: model from ``MMCOURSE_MODEL``."""
    return create_app(default_model_path())


# ---- running it -----------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app, port: int | None = None, host: str = "127.0.0.1"):
    """Run ``app`` under uvicorn in a background thread; yields the base URL; stops it after."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def subprocess_server(model_path: str | Path, port: int | None = None, **limits):
    """Run the service in a fresh ``python -m mmcourse.deploy.serve`` process; yields the base URL."""
    import subprocess
    import sys
    import urllib.request

    port = port or free_port()
    args = [sys.executable, "-m", "mmcourse.deploy.serve", "--model", str(model_path), "--port", str(port)]
    for k, v in limits.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start:\n{proc.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Serve an image+audio ONNX model over HTTP (loopback by default).")
    p.add_argument("--model", type=Path, default=None,
                   help=".onnx (ONNX Runtime) or .pt (eager PyTorch) file; default: $MMCOURSE_MODEL or the cache")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1: only this machine can connect")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    for f in fields(Limits):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    a = p.parse_args(argv)
    import uvicorn

    limits = Limits(**{f.name: getattr(a, f.name) for f in fields(Limits)})
    app = create_app(load_model(a.model or default_model_path(), a.threads), limits)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
