"""Run every exercise solution of chapter 03 (each asserts its own answer)."""


import pytest
import torch

from tests._helpers import exercise_names, load_solutions

SOLUTIONS = load_solutions("03_convolutions")
EXERCISES = exercise_names(SOLUTIONS)


def test_there_are_two_to_four_exercises():
    assert 2 <= len(EXERCISES) <= 4, EXERCISES


def _is_sobel_x(kernel: torch.Tensor) -> bool:
    from mmcourse.models.conv import KERNELS

    return torch.allclose(kernel, KERNELS["sobel x"], atol=0.01)


EXPECTED = {  # what each solution returns, checked on top of the asserts inside it
    "exercise_1": lambda err: err < 1e-5,
    "exercise_2": lambda rf: rf == 48,
    "exercise_3": _is_sobel_x,
    "exercise_4": lambda aps: abs(aps[0] - 0.6643) < 1e-4 and abs(aps[1] - 0.76) < 1e-9,
}


@pytest.mark.parametrize("name", EXERCISES)
def test_exercise_runs_and_asserts(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    answer = getattr(SOLUTIONS, name)()
    assert EXPECTED[name](answer), (name, answer)
