"""The Colab set-up cell, run as Colab would run it: a fake ``google.colab`` module in a fresh
interpreter, ``subprocess`` intercepted so nothing is installed, and the exact pip command
asserted. pip itself (offline, ``--dry-run``) confirms that the command keeps the torch that
is already there. The repository URL lives in one place."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import tomllib
from packaging.requirements import Requirement

from mmcourse.colab import CONSTRAINTS_NAME, KEEP, badge_markdown, requirement, setup_cell_source
from mmcourse.course import BRANCH, REPO, REPO_URL, colab_url

ROOT = Path(__file__).resolve().parents[1]

# Runs the cell given on stdin. argv: "colab" to fake google.colab, "fresh" to make
# mmcourse look not installed yet. Prints what the cell tried to run, as JSON.
DRIVER = r"""
import importlib.util, json, os, subprocess, sys, types
calls = []
def fake_run(cmd, *args, **kwargs):
    calls.append([str(c) for c in cmd])
    return subprocess.CompletedProcess(cmd, 0)
def refuse(*args, **kwargs):
    raise AssertionError("the set-up cell may only use subprocess.run")
subprocess.run = fake_run
subprocess.call = subprocess.check_call = subprocess.check_output = subprocess.Popen = refuse
os.system = refuse
if "colab" in sys.argv:
    google = types.ModuleType("google")
    google.colab = types.ModuleType("google.colab")
    sys.modules["google"], sys.modules["google.colab"] = google, google.colab
if "fresh" in sys.argv:
    real = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: None if name == "mmcourse" else real(name, *a)
exec(compile(sys.stdin.read(), "setup-cell", "exec"), {"__name__": "__main__"})
print("CALLS=" + json.dumps(calls))
"""


def run_cell(source: str, tmp_path: Path, *flags: str) -> tuple[list[list[str]], str]:
    """Run ``source`` in a fresh interpreter (TMPDIR=tmp_path); return pip calls and stdout."""
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", DRIVER, *flags], input=source, text=True,
                       capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("CALLS="))
    return json.loads(line[len("CALLS="):]), r.stdout


def test_in_colab_installs_mmcourse_and_pins_colabs_torch(tmp_path: Path):
    calls, out = run_cell(setup_cell_source(), tmp_path, "colab", "fresh")
    constraints = tmp_path / CONSTRAINTS_NAME
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "-c", str(constraints),
                      f"mmcourse[deploy,projects] @ git+https://github.com/{REPO}@{BRANCH}"]]
    pins = [f"{p}=={importlib.metadata.version(p)}" for p in ("torch", "torchvision", "torchaudio")]
    assert constraints.read_text() == "\n".join(pins) + "\n"  # the versions already installed
    assert "kept " + ", ".join(pins) in out


def test_outside_colab_does_nothing(tmp_path: Path):
    calls, _ = run_cell(setup_cell_source(), tmp_path, "fresh")
    assert calls == [] and not (tmp_path / CONSTRAINTS_NAME).exists()


def test_in_colab_with_mmcourse_already_installed_does_nothing(tmp_path: Path):
    calls, _ = run_cell(setup_cell_source(), tmp_path, "colab")  # e.g. the cell run twice
    assert calls == []


def test_the_simulation_catches_a_cell_that_would_reinstall_torch(tmp_path: Path):
    """The first set-up cell of this course (no pins) fails the exact-command check."""
    old = setup_cell_source().replace('"-c", constraints,', "")
    calls, _ = run_cell(old, tmp_path, "colab", "fresh")
    assert calls and "-c" not in calls[0]


def test_pip_dry_run_keeps_the_installed_torch(tmp_path: Path):
    """pip resolves mmcourse's requirements (pyproject.toml) under the cell's constraints file,
    offline, against this environment standing in for Colab's: it would install nothing more,
    so Colab's torch, torchvision and torchaudio stay."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"]
    assert {Requirement(d).name for d in deps} >= set(KEEP)
    extras = project["optional-dependencies"]
    deps = deps + extras["deploy"] + extras["projects"]  # the cell installs mmcourse[deploy,projects]
    constraints = tmp_path / CONSTRAINTS_NAME
    constraints.write_text("".join(f"{p}=={importlib.metadata.version(p)}\n" for p in KEEP))
    report = tmp_path / "report.json"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "-q",
         "--disable-pip-version-check", "--report", str(report), "-c", str(constraints), *deps],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    would = [i["metadata"]["name"] for i in json.loads(report.read_text())["install"]]
    assert would == [], f"pip would install {would}"
    req = Requirement(requirement())
    assert (req.name, req.extras, req.url) == ("mmcourse", {"deploy", "projects"}, f"git+{REPO_URL}@{BRANCH}")


def test_badge_and_requirement_come_from_the_course_map():
    assert REPO_URL == f"https://github.com/{REPO}"
    assert requirement() == f"mmcourse[deploy,projects] @ git+{REPO_URL}@{BRANCH}"
    assert badge_markdown("03_convolutions").endswith(f"({colab_url('03_convolutions')})")
    assert colab_url("03_convolutions") == (
        f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/03_convolutions.ipynb")
    other = setup_cell_source(repo_url="https://github.com/someone/fork", branch="dev")
    assert '"mmcourse[deploy,projects] @ git+https://github.com/someone/fork@dev"' in other


def test_the_repository_url_lives_in_one_place():
    """Only mmcourse/course.py spells the repository out; notebooks get it by stamping."""
    places = [p for d in ("mmcourse", "tools", "notebooks/src", "notebooks/solutions")
              for p in (ROOT / d).rglob("*.py")]
    spelled = [str(p.relative_to(ROOT)) for p in places
               if REPO in p.read_text() and p != ROOT / "mmcourse" / "course.py"]
    assert spelled == []
    for nb_path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = nbformat.read(nb_path, as_version=4).cells
        assert not [i for i, c in enumerate(cells[2:], 3) if REPO in c.source], \
            f"{nb_path.name}: a cell after the stamped header names the repository"


@pytest.mark.parametrize("nb_path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")),
                         ids=lambda p: p.stem)
def test_notebook_starts_with_the_current_badge_and_setup_cell(nb_path: Path):
    cells = nbformat.read(nb_path, as_version=4).cells
    assert cells[0].source.strip() == badge_markdown(nb_path.stem), \
        f"{nb_path.name}: stale badge (python tools/notebooks.py stamp)"
    assert cells[1].source.strip() == setup_cell_source(), \
        f"{nb_path.name}: stale set-up cell (python tools/notebooks.py stamp)"
