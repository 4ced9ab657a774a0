"""Run every exercise solution of chapter 11 (each asserts its own answer) in fast mode."""


import pytest

from tests._helpers import exercise_names, load_solutions

SOLUTIONS = load_solutions("11_project_speech_recognition")
NAMES = exercise_names(SOLUTIONS)


def test_there_are_two_to_four_exercises():
    assert 2 <= len(NAMES) <= 4, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_exercise(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    result = getattr(SOLUTIONS, name)()
    assert isinstance(result, dict) and result
