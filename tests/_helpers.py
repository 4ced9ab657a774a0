"""Small helpers shared by the foundation tests (not fixtures: conftest.py stays small)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from pathlib import Path

import pytest


def shared_datasets() -> Path:
    """The folder with the real data (``$MMCOURSE_DATA``); skip locally when absent, fail in CI."""
    env = os.environ.get("MMCOURSE_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    for c in candidates:
        if (c / "mnist").is_dir():
            return c
    if os.environ.get("CI"):
        raise RuntimeError("CI must set MMCOURSE_DATA to the shared datasets")
    pytest.skip("no local copy of the datasets (set MMCOURSE_DATA)")


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` over HTTP on a loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


def load_solutions(stem: str):
    """Import ``notebooks/solutions/<stem>.py`` (not a package) as a module."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / f"{stem}.py"
    spec = importlib.util.spec_from_file_location(f"solutions_{stem[:2]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exercise_names(module) -> list[str]:
    return sorted(n for n in dir(module) if n.startswith("exercise_"))
