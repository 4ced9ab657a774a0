"""Build the course notebooks from their sources, and check they are up to date.

Sources are ``notebooks/src/NN_name.py`` in jupytext's percent format (diffable,
reviewable). ``build`` turns one into ``notebooks/NN_name.ipynb``, stamps the
Colab header (badge + set-up cell, from ``mmcourse/colab.py``) and executes it
(full mode unless ``--fast``), storing the outputs. ``stamp`` rewrites only the
header of built notebooks (after the repository URL or the set-up cell changed),
keeping every other cell and its outputs. ``check`` fails when a notebook's cells
differ from its source or its header is stale.

    python tools/notebooks.py build notebooks/src/03_convolutions.py
    python tools/notebooks.py build --fast notebooks/src/03_convolutions.py   # quick try
    python tools/notebooks.py build --no-execute notebooks/src/*.py
    python tools/notebooks.py stamp            # every notebooks/NN_*.ipynb
    python tools/notebooks.py check
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mmcourse.colab import badge_markdown, setup_cell_source  # noqa: E402

NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"
HEADER_TAG = "colab-header"
KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def header_cells(stem: str) -> list:
    """The badge and the Colab set-up cell (both made by mmcourse/colab.py), tagged."""
    badge = nbformat.v4.new_markdown_cell(badge_markdown(stem))
    setup = nbformat.v4.new_code_cell(setup_cell_source())
    for c in (badge, setup):
        c.metadata["tags"] = [HEADER_TAG]
    return [badge, setup]


def _number(nb: nbformat.NotebookNode) -> None:
    """Cell ids by position (nbformat 4.5 needs ids; stable ones keep rebuilds' diffs small)."""
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i}"


def body_cells(cells: list) -> list:
    """The cells below the Colab header (those not tagged ``colab-header``)."""
    return [c for c in cells if HEADER_TAG not in c.get("metadata", {}).get("tags", [])]


def from_source(src: Path) -> nbformat.NotebookNode:
    nb = jupytext.read(src, fmt="py:percent")
    body = body_cells(nb.cells)
    nb.cells = header_cells(src.stem) + body
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    _number(nb)
    return nb


def execute(nb: nbformat.NotebookNode, fast: bool, timeout: int = 3600) -> float:
    from nbclient import NotebookClient

    env_before = os.environ.get("MMCOURSE_FAST")
    os.environ["MMCOURSE_FAST"] = "1" if fast else "0"
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(NB_DIR)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("MMCOURSE_FAST", None)
        else:
            os.environ["MMCOURSE_FAST"] = env_before
    return time.perf_counter() - t0


def build(src: Path, run: bool, fast: bool) -> Path:
    nb = from_source(src)
    out = NB_DIR / f"{src.stem}.ipynb"
    if run:
        seconds = execute(nb, fast)
        print(f"{src.stem}: executed in {'fast' if fast else 'full'} mode in {seconds:.0f} s")
    nbformat.write(nb, out)
    return out


def stamp(nb_path: Path) -> bool:
    """Replace the header cells of a built notebook by fresh ones; True if it changed."""
    nb = nbformat.read(nb_path, as_version=4)
    body = body_cells(nb.cells)
    old_setup = [c for c in nb.cells if HEADER_TAG in c.metadata.get("tags", []) and c.cell_type == "code"]
    cells = header_cells(nb_path.stem) + body
    # The set-up cell ran in the build (it prints nothing outside Colab): keep its execution count.
    if old_setup and old_setup[0].get("execution_count") is not None:
        cells[1].execution_count = old_setup[0].execution_count
    elif body and any(c.cell_type == "code" and c.get("execution_count") for c in body):
        cells[1].execution_count = 1
    if _sources(nb.cells) == _sources(cells) and (
        not old_setup or old_setup[0].get("execution_count") == cells[1].execution_count
    ):
        return False
    nb.cells = cells
    _number(nb)
    nbformat.write(nb, nb_path)
    return True


def _sources(cells: list) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in cells]


def stale() -> list[str]:
    """Notebooks whose cells differ from their source (or that have no source)."""
    problems = []
    for nb_path in sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb")):
        src = SRC_DIR / f"{nb_path.stem}.py"
        if not src.is_file():
            problems.append(f"{nb_path.name}: no source {src.relative_to(ROOT)}")
            continue
        if _sources(nbformat.read(nb_path, as_version=4).cells) != _sources(from_source(src).cells):
            problems.append(f"{nb_path.name}: differs from {src.relative_to(ROOT)} "
                            f"(run: python tools/notebooks.py build {src.relative_to(ROOT)})")
    for src in sorted(SRC_DIR.glob("[0-9][0-9]_*.py")):
        if not (NB_DIR / f"{src.stem}.ipynb").is_file():
            problems.append(f"{src.name}: never built")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("sources", nargs="+", type=Path)
    b.add_argument("--fast", action="store_true", help="execute in fast mode (do not commit that)")
    b.add_argument("--no-execute", action="store_true")
    st = sub.add_parser("stamp", help="refresh the badge + set-up cell of built notebooks")
    st.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    sub.add_parser("check")
    a = p.parse_args()
    if a.cmd == "build":
        for s in a.sources:
            print(build(s.resolve(), run=not a.no_execute, fast=a.fast))
        return 0
    if a.cmd == "stamp":
        for nb_path in a.notebooks or sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb")):
            print(f"{nb_path.name}: {'stamped' if stamp(nb_path.resolve()) else 'up to date'}")
        return 0
    problems = stale()
    print("\n".join(problems) or "all notebooks match their sources")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
