"""Record a chapter's headline numbers, and assert its targets.

Each chapter calls :func:`record` for its measured numbers; they land in
``results/<chapter>.json`` as a list of ``{"metric", "value", "target",
"higher_is_better", "mode", "seed"}`` (plus ``"spread"`` when one was measured). The chapter's
last cell calls :func:`check_targets`, which fails (and so fails nbval in CI) when any target of
the current mode is missed; in full mode also when a value sits exactly on its target, or when
its margin over the target is smaller than its recorded seed-to-seed spread.

>>> rec = Results("03_convolutions")
>>> rec.record("mnist_cnn_test_acc", 0.991, target=pick(fast=0.9, full=0.985),
...            spread=pick(fast=None, full=0.002))   # max - min over seeds 0, 1, 2 (measured once)
>>> rec.check_targets()
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from mmcourse.config import mode, offset_seed, results_dir


class TargetMissed(AssertionError):
    """A recorded number missed its target."""


class Results:
    """The results file of one chapter (``name`` is the notebook's stem)."""

    def __init__(self, name: str, directory: Path | None = None):
        self.name = name
        self.path = Path(directory or results_dir()) / f"{name}.json"
        self.current: list[dict] = []  # what this run recorded

    def load(self) -> list[dict]:
        if not self.path.is_file():
            return []
        try:
            return json.loads(self.path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.path} is not valid JSON ({err}); delete it and rerun") from err

    def record(self, metric: str, value: float, target: float | None = None,
               higher_is_better: bool = True, seed: int | None = 0, spread: float | None = None) -> dict:
        """Store one number of the current mode (replacing the same metric of this mode).

        ``seed``: the run's seed (stored with ``MMCOURSE_SEED`` added). ``spread``: the
        seed-to-seed spread of this number, **max - min over at least 3 seeds** of the same
        full-mode run, measured once (say in the chapter how); in full mode the margin
        ``|value - target|`` must be at least this large.
        """
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{metric} is {value}: training diverged?")
        if spread is not None and not (math.isfinite(float(spread)) and float(spread) >= 0):
            raise ValueError(f"spread of {metric} must be a finite number >= 0 (max - min over seeds), got {spread}")
        entry = {
            "metric": metric, "value": round(value, 6),
            "target": None if target is None else float(target),
            "higher_is_better": bool(higher_is_better), "mode": mode(),
            "seed": None if seed is None else offset_seed(seed),
        }  # fmt: skip
        if spread is not None:
            entry["spread"] = round(float(spread), 6)
        self.current = [e for e in self.current if e["metric"] != metric] + [entry]
        rows = [e for e in self.load() if not (e["metric"] == metric and e["mode"] == entry["mode"])]
        rows.append(entry)
        rows.sort(key=lambda e: (e["mode"], e["metric"]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(rows, indent=1) + "\n")
        os.replace(tmp, self.path)
        return entry

    def missed(self) -> list[dict]:
        """Entries recorded in this run whose value misses the target."""
        out = []
        for e in self.current:
            t = e["target"]
            if t is not None and (e["value"] < t if e["higher_is_better"] else e["value"] > t):
                out.append(e)
        return out

    def too_close(self) -> list[dict]:
        """Full-mode entries of this run that meet their target without a margin: the value sits
        exactly on the target, or the margin is smaller than the recorded seed-to-seed spread."""
        missed = self.missed()
        return [e for e in self.current if e["mode"] == "full" and e not in missed and margin_problem(e)]

    def check_targets(self) -> str:
        """Raise :class:`TargetMissed` if any target of this run is missed (in full mode: or met
        without a margin, see :meth:`too_close`); else a summary table."""
        if not self.current:
            raise TargetMissed(f"{self.name}: nothing was recorded in this run")
        missed, close = self.missed(), self.too_close()
        lines = [f"{'metric':<40} {'value':>9} {'target':>9} {'spread':>8}  ok   ({mode()} mode)"]
        for e in self.current:
            t = e["target"]
            ok = "NO" if e in missed else "NO: margin" if e in close else "yes"
            sign = ">=" if e["higher_is_better"] else "<="
            tt = "" if t is None else f"{sign}{t:g}"
            sp = f"{e['spread']:.4g}" if e.get("spread") is not None else ""
            lines.append(f"{e['metric']:<40} {e['value']:>9.4f} {tt:>9} {sp:>8}  {ok}")
        table = "\n".join(lines)
        if missed:
            raise TargetMissed(f"targets missed in {self.name}:\n{table}")
        if close:
            why = "\n".join(f"  {e['metric']}: {margin_problem(e)}" for e in close)
            raise TargetMissed(f"targets met without a margin in {self.name} (full mode):\n{why}\n{table}")
        return table


def margin_problem(entry: dict) -> str | None:
    """Why a (met) target has no margin, or None: the value sits on the target, or
    ``|value - target|`` is smaller than the entry's recorded ``spread`` (if any)."""
    t, v = entry.get("target"), entry["value"]
    if t is None:
        return None
    margin = (v - t) if entry.get("higher_is_better", True) else (t - v)
    if margin == 0:
        return f"the value {v:g} sits exactly on its target {t:g}: leave a margin"
    spread = entry.get("spread")
    if spread is not None and 0 < margin < spread:
        return (f"the margin {margin:.4g} over the target {t:g} is smaller than the seed-to-seed "
                f"spread {spread:.4g}: another seed could miss it")
    return None
