"""The exercises' solutions of chapter 05 run and assert their answers (fast mode)."""

from __future__ import annotations

import pytest

from tests._helpers import exercise_names, load_solutions


@pytest.mark.parametrize("name", exercise_names(load_solutions("05_attention_and_transformers")))
def test_solution(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    getattr(load_solutions("05_attention_and_transformers"), name)()
