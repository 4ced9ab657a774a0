"""The exercises' solutions of chapter 01 run and assert their answers (fast mode)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests._helpers import shared_datasets

PATH = Path(__file__).resolve().parents[1] / "notebooks/solutions/01_multimodal_data.py"


def _module():
    spec = importlib.util.spec_from_file_location("solutions_01", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", sorted(n for n in dir(_module()) if n.startswith("exercise_")))
def test_solution(name, monkeypatch):
    shared_datasets()
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    getattr(_module(), name)()
