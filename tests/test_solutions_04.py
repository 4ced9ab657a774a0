"""Run every exercise solution of chapter 04 (each asserts its own answer) in fast mode."""

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / "04_recurrent_networks.py"


def _load():
    spec = importlib.util.spec_from_file_location("solutions_04", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOLUTIONS = _load()
NAMES = sorted(n for n in dir(SOLUTIONS) if n.startswith("exercise_"))


def test_there_are_two_to_four_exercises():
    assert 2 <= len(NAMES) <= 4, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_exercise(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    result = getattr(SOLUTIONS, name)()
    assert isinstance(result, dict) and result
