"""A bounded load-test client for the service, loopback only.

``load_test(url, payloads, requests=1000, concurrency=16)`` sends exactly ``requests`` POSTs with
at most ``concurrency`` in flight (``concurrency`` workers, each sending its next request when
its last one is answered), then stops by itself. Every request has a timeout, and the whole run a
deadline, so it cannot hang. It reports throughput (answered requests per second of wall time),
p50 / p99 latency of the successful ones, and the errors by kind: nothing is retried, so a
request that failed or was refused is counted, never lost.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from urllib.parse import urlparse

import numpy as np

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _check_loopback(url: str) -> None:
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"load_test only targets this machine (127.0.0.1 / localhost), got host {host!r}")


def multipart(files: dict[str, tuple[str, bytes, str]], boundary: str = "mmcourse-load-test") -> tuple[bytes, str]:
    """``(body, content type)`` of a multipart/form-data upload of ``{field: (filename, bytes, type)}``."""
    parts = []
    for name, (filename, data, ctype) in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _request(host: str, port: int, payload: dict | bytes, path: str = "/predict") -> bytes:
    """One POST on the wire: ``payload`` is ``{field: (filename, bytes, type)}`` (multipart) or a JSON body (bytes)."""
    body, ctype = (payload, "application/json") if isinstance(payload, bytes) else multipart(payload)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; ``(status, body)`` of the answer."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _run(url: str, payloads: Sequence[dict | bytes], requests: int, concurrency: int, timeout: float,
               path: str = "/predict") -> dict:
    """``concurrency`` workers, each with one keep-alive connection, share ``requests`` requests."""
    u = urlparse(url)
    host, port = u.hostname, u.port or 80
    wire = [_request(host, port, p, path) for p in payloads]  # encoded once: the client stays cheap
    counter = iter(range(requests))
    latencies: list[float] = []
    status: Counter[str] = Counter()
    batch_sizes: list[int] = []

    async def worker():
        conn = None
        for i in counter:
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                code, body = await asyncio.wait_for(_exchange(*conn, wire[i % len(wire)]), timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as err:  # noqa: UP041
                status[type(err).__name__] += 1
                if conn is not None:
                    conn[1].close()
                conn = None
                continue
            status[str(code)] += 1
            if code == 200:
                latencies.append(time.perf_counter() - t0)
                batch_sizes.append(json.loads(body).get("batch_size", 1))
        if conn is not None:
            conn[1].close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    ok = status.get("200", 0)
    return {"requests": requests, "concurrency": concurrency, "seconds": seconds, "ok": ok,
            "errors": requests - ok, "status": dict(status),
            "throughput_rps": ok / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "mean_batch": float(np.mean(batch_sizes)) if batch_sizes else 0.0}


def load_test(url: str, payloads: Sequence[dict | bytes], requests: int = 1000, concurrency: int = 16,
              timeout: float = 10.0, deadline: float = 300.0, path: str = "/predict") -> dict:
    """Send ``requests`` POST /predict at ``concurrency``; returns the report (see the module docstring).

    ``payloads``: ``{"image": (filename, bytes, content type), "audio": ...}`` dicts (multipart) or JSON
    bodies (``bytes``), sent in turn to ``path`` (chapter 13's assistant: ``path="/chat"``).
    Runs its own event loop in a thread, so it also works inside Jupyter (which already runs one).
    """
    _check_loopback(url)
    if requests < 1 or concurrency < 1 or not payloads:
        raise ValueError(f"need requests >= 1, concurrency >= 1 and payloads, got {requests}, {concurrency}, "
                         f"{len(payloads)} payloads")
    out: dict = {}

    def target():
        try:
            out["report"] = asyncio.run(asyncio.wait_for(_run(url, payloads, requests, concurrency, timeout, path),
                                                         deadline))
        except BaseException as err:  # re-raised in the caller's thread
            out["error"] = err

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(deadline + 10)
    if "error" in out:
        raise out["error"]
    if "report" not in out:
        raise TimeoutError(f"the load test did not finish within {deadline:g} s")
    return out["report"]


def compare(urls: dict[str, str], payloads: Sequence[dict], requests: int = 1000, concurrency: int = 16,
            rounds: int = 3, warmup: int = 50) -> dict[str, dict]:
    """Load-test several services in alternating rounds; per service, the report of one middle round.

    That round is ``sorted(rounds, by throughput)[rounds // 2]``: the median for an odd number of
    rounds, the upper of the two middle ones for an even number (with 2 rounds: the faster one).
    Alternating (A, B, A, B, ...) exposes every service to the same drift in the machine's load;
    each report gains ``"rounds_rps"`` (every round's throughput), ``"requests_total"`` and
    ``"errors"`` summed over all rounds.
    """
    for url in urls.values():
        load_test(url, payloads, requests=warmup, concurrency=concurrency)  # warm-up, not counted
    runs: dict[str, list[dict]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            runs[name].append(load_test(url, payloads, requests=requests, concurrency=concurrency))
    out = {}
    for name, reps in runs.items():
        rps = [r["throughput_rps"] for r in reps]
        middle = sorted(reps, key=lambda r: r["throughput_rps"])[len(reps) // 2]
        out[name] = {**middle, "rounds_rps": rps, "errors": sum(r["errors"] for r in reps),
                     "requests_total": sum(r["requests"] for r in reps)}
    return out
