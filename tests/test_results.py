"""results.record / check_targets: the mechanism every chapter's checks cell relies on."""

from __future__ import annotations

import json

import pytest

from mmcourse.results import Results, TargetMissed


def test_record_writes_one_row_per_metric_and_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    r = Results("99_test", tmp_path)
    r.record("acc", 0.91, target=0.9)
    r.record("acc", 0.95, target=0.9)  # replaces
    r.record("loss", 0.3, target=0.5, higher_is_better=False)
    monkeypatch.setenv("MMCOURSE_FAST", "0")
    Results("99_test", tmp_path).record("acc", 0.99, target=0.98, seed=1)
    rows = json.loads((tmp_path / "99_test.json").read_text())
    assert {(e["metric"], e["mode"]) for e in rows} == {("acc", "fast"), ("loss", "fast"), ("acc", "full")}
    fast_acc = next(e for e in rows if e["metric"] == "acc" and e["mode"] == "fast")
    assert fast_acc == {"metric": "acc", "value": 0.95, "target": 0.9, "higher_is_better": True,
                        "mode": "fast", "seed": 0}
    assert "acc" in r.check_targets()


def test_missed_targets_fail(tmp_path):
    r = Results("99_test", tmp_path)
    with pytest.raises(TargetMissed, match="nothing was recorded"):
        r.check_targets()
    r.record("acc", 0.5, target=0.9)
    r.record("loss", 0.7, target=0.5, higher_is_better=False)
    with pytest.raises(TargetMissed) as err:
        r.check_targets()
    assert len(r.missed()) == 2 and "NO" in str(err.value)
    with pytest.raises(ValueError, match="diverged"):
        r.record("acc", float("nan"))


def test_full_mode_needs_a_margin_at_least_the_seed_spread(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "0")
    r = Results("99_test", tmp_path)
    r.record("acc", 0.985, target=0.985)  # exactly on its target
    with pytest.raises(TargetMissed, match="sits exactly on its target"):
        r.check_targets()
    assert [e["metric"] for e in r.too_close()] == ["acc"] and r.missed() == []
    r.record("acc", 0.99, target=0.985, spread=0.008)  # margin 0.005 < spread 0.008
    with pytest.raises(TargetMissed, match="smaller than the seed-to-seed spread 0.008"):
        r.check_targets()
    r.record("acc", 0.995, target=0.985, spread=0.008)  # margin 0.01 >= spread
    r.record("loss", 1.2, target=1.5, higher_is_better=False, spread=0.1)
    table = r.check_targets()
    assert "0.008" in table and "spread" in table.splitlines()[0]
    rows = json.loads((tmp_path / "99_test.json").read_text())
    assert next(e for e in rows if e["metric"] == "acc")["spread"] == 0.008
    with pytest.raises(ValueError, match="spread"):
        r.record("acc", 0.99, target=0.9, spread=-1)


def test_fast_mode_and_old_files_need_no_margin(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    r = Results("99_test", tmp_path)
    r.record("acc", 0.9, target=0.9, spread=0.05)  # fast targets are lower: no margin rule
    assert "yes" in r.check_targets()
    monkeypatch.setenv("MMCOURSE_FAST", "0")
    old = {"metric": "acc", "value": 0.99, "target": 0.98, "higher_is_better": True, "mode": "full", "seed": 0}
    (tmp_path / "98_old.json").write_text(json.dumps([old]))  # written before "spread" existed
    r2 = Results("98_old", tmp_path)
    assert r2.load() == [old]
    r2.record("acc", 0.99, target=0.98)
    assert "yes" in r2.check_targets()


def test_seed_offset_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_SEED", "3")
    assert Results("99_test", tmp_path).record("acc", 0.5, seed=1)["seed"] == 4
    monkeypatch.setenv("MMCOURSE_SEED", "x")
    with pytest.raises(ValueError, match="MMCOURSE_SEED must be an integer"):
        Results("99_test", tmp_path).record("acc", 0.5)
