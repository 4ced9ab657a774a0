"""The thread policy: MMCOURSE_THREADS, then OMP_NUM_THREADS, then the chapter's preference."""

import pytest
import torch

from mmcourse.device import configure_threads, describe


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_environment_wins_over_the_chapter(monkeypatch):
    monkeypatch.delenv("MMCOURSE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert configure_threads(preferred=1) == 1 == torch.get_num_threads()
    assert "1 thread, chapter's choice" in describe()
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert configure_threads(preferred=1) == 2 and "2 threads, OMP_NUM_THREADS" in describe()
    monkeypatch.setenv("MMCOURSE_THREADS", "1")
    assert configure_threads(preferred=2) == 1 and "MMCOURSE_THREADS" in describe()


def test_bad_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("MMCOURSE_THREADS", "two")
    with pytest.raises(ValueError, match="MMCOURSE_THREADS must be a whole number of threads >= 1"):
        configure_threads()
    monkeypatch.setenv("MMCOURSE_THREADS", "0")
    with pytest.raises(ValueError, match="MMCOURSE_THREADS"):
        configure_threads()
    monkeypatch.delenv("MMCOURSE_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with pytest.raises(ValueError, match="preferred"):
        configure_threads(preferred=0)


def test_describe_shows_a_seed_offset(monkeypatch):
    monkeypatch.setenv("MMCOURSE_SEED", "2")
    assert describe().endswith("MMCOURSE_SEED=2")
    monkeypatch.delenv("MMCOURSE_SEED")
    assert "MMCOURSE_SEED" not in describe()
