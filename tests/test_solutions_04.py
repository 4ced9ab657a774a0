"""Run every exercise solution of chapter 04 (each asserts its own answer) in fast mode."""


import pytest

from tests._helpers import load_solutions

SOLUTIONS = load_solutions("04_recurrent_networks")
NAMES = sorted(n for n in dir(SOLUTIONS) if n.startswith("exercise_"))


def test_there_are_two_to_four_exercises():
    assert 2 <= len(NAMES) <= 4, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_exercise(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    result = getattr(SOLUTIONS, name)()
    assert isinstance(result, dict) and result
