"""Notebook hygiene: the rules every committed chapter notebook follows.

    python tools/hygiene.py                       # every notebooks/NN_*.ipynb + the course map
    python tools/hygiene.py notebooks/01_multimodal_data.ipynb

Each problem is reported as ``notebook: [rule] what is wrong (how to fix)``. The rules:

- ``kernel``     the kernelspec is ``python3`` (what tools/notebooks.py writes)
- ``badge``      cell 1 is the "Open in Colab" badge for this notebook (mmcourse/colab.py)
- ``setup``      cell 2 is the current Colab set-up cell (stale copies fail: run
                 ``python tools/notebooks.py stamp``)
- ``source``     the cells match ``notebooks/src/NN_name.py`` (rebuild with tools/notebooks.py)
- ``course-map`` the chapter is in mmcourse/course.py; its title cell is ``# NN · ...`` with
                 a ``**Book:**`` line naming the book's chapter(s) course.py maps it to
- ``checks``     a ``## Checks`` section whose code calls ``check_targets()``, run in full mode
- ``exercises``  a ``## Exercises`` section with 2-4 exercises ("Exercise 1", ...), solutions
                 ``exercise_1()``... in notebooks/solutions/NN_name.py, run by tests/test_solutions_NN.py
- ``results``    results/NN_name.json exists, holds full-mode numbers, all meeting their targets
                 with a margin (not exactly on the target; at least the recorded seed spread)
- ``outputs``    every code cell ran, no error output, no output over 1 MB, file under 2 MB
- ``no-cdn``     no output loads a script from the network (widgets must work offline)
- ``text-size``  no output holds more than 10 KB of text (stream text and text/plain; images
                 do not count): print a summary, not a dump
- ``bytes``      no output shows a raw ``bytes`` repr (``b'\\x89PNG...'``): usually a method's
                 return value left as a cell's last expression (end the line with ``;``)
- ``figure-lint`` no output holds a ``figure lint:`` warning (mmcourse/viz/lint.py: axis
                 labels, colour bars, blanked tick labels); fix the figure and rebuild
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mmcourse.colab import badge_markdown, setup_cell_source  # noqa: E402
from mmcourse.course import CHAPTERS  # noqa: E402
from mmcourse.results import margin_problem  # noqa: E402

MAX_OUTPUT = 1_000_000  # bytes, one output
MAX_NOTEBOOK = 2_000_000  # bytes, the whole .ipynb
MAX_TEXT = 10_000  # bytes of text in one output
BYTES_REPR = re.compile(r"""\bb(['"])(?:[^'"\\\n]|\\.){0,200}?\\x[0-9a-fA-F]{2}""")
FIGURE_LINT = "figure lint:"
KERNEL_NAME = "python3"
HEADER_TAG = "colab-header"
CDN = re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']?(https?:)?//|require\.config|"
                 r"cdn\.jsdelivr\.net|unpkg\.com|cdnjs\.cloudflare\.com", re.IGNORECASE)


@functools.cache
def _nbtool():
    """tools/notebooks.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_mmcourse_nbtool", ROOT / "tools" / "notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _text(src) -> str:
    return "".join(src) if isinstance(src, list) else (src or "")


def _section(cells: list[dict], heading: str) -> list[dict] | None:
    """The cells from the markdown cell opening with ``heading`` to the next ``## `` heading."""
    for i, c in enumerate(cells):
        if c["cell_type"] == "markdown" and _text(c["source"]).lstrip().startswith(heading):
            out = [c]
            for d in cells[i + 1:]:
                if d["cell_type"] == "markdown" and re.match(r"\s*## ", _text(d["source"])):
                    break
                out.append(d)
            return out
    return None


def _output_text(o: dict) -> str:
    """The text of one output: its stream text and its text/plain data (not images or HTML)."""
    return _text(o.get("text", "")) + _text(o.get("data", {}).get("text/plain", ""))


def _outputs_text(cell: dict) -> str:
    parts = []
    for o in cell.get("outputs", []):
        parts.append(_text(o.get("text", "")))
        for mime, v in o.get("data", {}).items():
            if mime.startswith("text/") or mime.endswith("javascript"):
                parts.append(_text(v))
    return "\n".join(parts)


def exercise_numbers(cells: list[dict]) -> list[int]:
    """The exercises of the ``## Exercises`` section: the N of "Exercise N" labels, else of
    a numbered list ("1. ...") or numbered headings ("### 1 ...") in its markdown."""
    section = _section(cells, "## Exercises") or []
    text = "\n".join(_text(c["source"]) for c in section if c["cell_type"] == "markdown")
    for pattern in (r"\bExercise\s+(\d+)\b", r"(?m)^\s{0,3}(\d+)[.)]\s", r"(?m)^#{3,4}\s+(\d+)\b"):
        if found := sorted({int(n) for n in re.findall(pattern, text)}):
            return found
    return []


def book_key(section: str) -> tuple:
    """Which part of the book a section names: ("preface",) or its chapter numbers, from
    "Ch. 1-2: ...", "Chapters 1–2 — ...", "Ch. 4: ...", "Chapter 4, ..."."""
    s = section.strip().lower()
    if s.startswith("preface"):
        return ("preface",)
    m = re.match(r"(?:ch\.?|chapters?)\s*(\d+)(?:\s*(?:-|–|—|to|and|&|,)\s*(\d+))?", s)
    if not m:
        return ("?", s[:40])
    a, b = int(m.group(1)), int(m.group(2) or m.group(1))
    return tuple(range(a, b + 1)) if b >= a else (a, b)


def solution_functions(path: Path) -> list[str]:
    """Names of the top-level ``exercise_N`` functions of a solutions file (not imported)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef)
            and re.fullmatch(r"exercise_\d+", n.name)]


def check(nb_path: Path, root: Path = ROOT) -> list[str]:
    """Every hygiene problem of one notebook, as ``[rule] message`` strings."""
    nb_path = Path(nb_path)
    stem, nn = nb_path.stem, nb_path.stem[:2]
    problems: list[str] = []

    def bad(rule: str, msg: str) -> None:
        problems.append(f"[{rule}] {msg}")

    raw = nb_path.read_bytes()
    nb = json.loads(raw)
    cells = nb.get("cells", [])

    # kernel
    name = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if name != KERNEL_NAME:
        bad("kernel", f"kernelspec name is {name!r}, expected {KERNEL_NAME!r}")

    # badge + setup cell (the header tools/notebooks.py stamps)
    first = cells[0] if cells else {"cell_type": None, "source": ""}
    if first["cell_type"] != "markdown" or _text(first["source"]).strip() != badge_markdown(stem):
        bad("badge", "cell 1 is not this notebook's 'Open in Colab' badge "
            "(run: python tools/notebooks.py stamp)")
    second = cells[1] if len(cells) > 1 else {"cell_type": None, "source": ""}
    if second["cell_type"] != "code" or _text(second["source"]).strip() != setup_cell_source():
        bad("setup", "cell 2 is not the current Colab set-up cell, it is stale or missing "
            "(run: python tools/notebooks.py stamp)")

    # source
    src = root / "notebooks" / "src" / f"{stem}.py"
    if not src.is_file():
        bad("source", f"no source {src.relative_to(root)}")
    else:
        tool = _nbtool()  # compares the cells below the header (stale headers: rule "setup")
        built, fresh = (tool._sources(tool.body_cells(n.cells))
                        for n in (nbformat_read(nb_path), tool.from_source(src)))
        if built != fresh:
            bad("source", f"cells differ from {src.relative_to(root)} "
                f"(run: python tools/notebooks.py build {src.relative_to(root)})")

    # course map: title and book section
    chapter = {c[0]: c for c in CHAPTERS}.get(stem)
    body = _nbtool().body_cells(cells)
    if chapter is None:
        bad("course-map", f"{stem} is not in mmcourse/course.py's CHAPTERS")
    else:
        title = _text(body[0]["source"]) if body and body[0]["cell_type"] == "markdown" else ""
        if not re.match(rf"#\s+{nn}\b", title):
            bad("course-map", f"the first cell after the header must be the title '# {nn} · {chapter[1]}'")
        m = re.search(r"\*\*Book:\*\*\s*(.+)", title)
        if not m or book_key(m.group(1)) != book_key(chapter[2]):
            bad("course-map", f"the title cell's '**Book:**' line must name the book's "
                f"'{chapter[2].split(':')[0]}' as mmcourse/course.py maps {stem} to "
                f"'{chapter[2]}'; it says {m.group(1)[:60] if m else 'nothing'!r}")

    # checks
    checks = _section(cells, "## Checks")
    code = [c for c in checks or [] if c["cell_type"] == "code"]
    if not checks:
        bad("checks", "no '## Checks' section")
    elif not any("check_targets(" in _text(c["source"]) for c in code):
        bad("checks", "the '## Checks' section never calls rec.check_targets()")
    elif not any("(full mode)" in _outputs_text(c) for c in code):
        bad("checks", "the checks did not run in full mode: the committed notebook must be a "
            "full-mode build (python tools/notebooks.py build, without --fast)")

    # exercises and their solutions
    numbers = exercise_numbers(cells)
    if _section(cells, "## Exercises") is None:
        bad("exercises", "no '## Exercises' section")
    elif not 2 <= len(numbers) <= 4 or numbers != list(range(1, len(numbers) + 1)):
        bad("exercises", f"the '## Exercises' section must number 2-4 exercises "
            f"('Exercise 1', 'Exercise 2', ...); found {numbers or 'none'}")
    sol = root / "notebooks" / "solutions" / f"{stem}.py"
    if not sol.is_file():
        bad("exercises", f"no solutions file {sol.relative_to(root)}")
    else:
        want = [f"exercise_{n}" for n in numbers]
        got = solution_functions(sol)
        if sorted(got) != sorted(want):
            bad("exercises", f"{sol.relative_to(root)} defines {got}, the notebook's exercises "
                f"need {want}")
        test = root / "tests" / f"test_solutions_{nn}.py"
        if not test.is_file():
            bad("exercises", f"no {test.relative_to(root)} running the solutions")
        elif stem not in (text := test.read_text()) and "solutions" not in text:
            bad("exercises", f"{test.relative_to(root)} does not load {sol.relative_to(root)}")

    # results
    res = root / "results" / f"{stem}.json"
    if not res.is_file():
        bad("results", f"no {res.relative_to(root)} (the notebook's Results(...) writes it)")
    else:
        try:
            rows = json.loads(res.read_text())
        except json.JSONDecodeError as err:
            rows = None
            bad("results", f"{res.relative_to(root)} is not valid JSON ({err})")
        if rows is not None:
            full = [r for r in rows if r.get("mode") == "full"]
            if not full:
                bad("results", f"{res.relative_to(root)} has no full-mode numbers "
                    "(build the notebook in full mode)")
            # A published chapter whose successor waits in notebooks/drafts/ keeps its last good
            # build: the margin rule (added after that build) applies once the successor builds.
            successor = (root / "notebooks" / "drafts" / f"{stem}.py").is_file()
            for r in full:
                t, v = r.get("target"), r.get("value")
                if t is not None and (v < t if r.get("higher_is_better", True) else v > t):
                    bad("results", f"{r['metric']} = {v} misses its full-mode target {t}")
                elif (why := margin_problem(r)) and not successor:
                    bad("results", f"{r['metric']}: {why}")

    # outputs
    if len(raw) > MAX_NOTEBOOK:
        bad("outputs", f"the notebook is {len(raw) / 1e6:.1f} MB (limit {MAX_NOTEBOOK / 1e6:.0f} MB)")
    for i, c in enumerate(cells, 1):
        if c["cell_type"] != "code":
            continue
        header = HEADER_TAG in c.get("metadata", {}).get("tags", [])
        if c.get("execution_count") is None and not header:
            bad("outputs", f"cell {i} never ran (build the notebook with tools/notebooks.py)")
        for o in c.get("outputs", []):
            size = len(json.dumps(o))
            if size > MAX_OUTPUT:
                bad("outputs", f"cell {i} has an output of {size / 1e6:.1f} MB (limit 1 MB)")
            if o.get("output_type") == "error":
                bad("outputs", f"cell {i} stored an error: {o.get('ename')}: {o.get('evalue')}")
            text = _output_text(o)
            if len(text.encode()) > MAX_TEXT:
                bad("text-size", f"cell {i} has an output of {len(text.encode()) / 1e3:.0f} KB of text "
                    f"(limit {MAX_TEXT / 1e3:.0f} KB): print a summary instead")
            if m := BYTES_REPR.search(text):
                bad("bytes", f"cell {i} shows a raw bytes repr ({text[m.start():m.start() + 24]}...): a return value "
                    "left as the cell's last expression? end that line with ';'")
            for line in text.splitlines():
                if FIGURE_LINT in line:
                    bad("figure-lint", f"cell {i}: {line[line.index(FIGURE_LINT):].strip()[:200]}")
        if CDN.search(_outputs_text(c)):
            bad("no-cdn", f"cell {i} has an output that loads a script from the network")
    return problems


def nbformat_read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def in_progress(root: Path = ROOT) -> list[str]:
    """Chapters whose source is still a draft (``notebooks/drafts/NN_name.py``): not built yet."""
    return sorted(p.stem for p in (root / "notebooks" / "drafts").glob("[0-9][0-9]_*.py"))


def missing_chapters(root: Path = ROOT) -> list[str]:
    """Chapters of the course map whose notebook is not built (drafts in progress excepted)."""
    drafts = set(in_progress(root))
    return [f"notebooks/{stem}.ipynb: [course-map] chapter '{title}' is in mmcourse/course.py "
            "but its notebook is not built"
            for stem, title, _ in CHAPTERS
            if not (root / "notebooks" / f"{stem}.ipynb").is_file() and stem not in drafts]


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    lines = [] if argv else missing_chapters()
    for p in paths:
        found = check(p)
        lines += [f"{p.name}: {m}" for m in found] or [f"{p.name}: ok"]
    notes = [f"note: {stem} has a successor in notebooks/drafts/{stem}.py; the published notebook is "
             "its last good build (margin rule deferred until the successor builds)"
             for stem in in_progress() if (ROOT / "notebooks" / f"{stem}.ipynb").is_file()]
    print("\n".join(lines + notes))
    return 1 if any(not ln.endswith(": ok") for ln in lines) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
