"""The widgets work where learners use them: JupyterLab in a real browser, with no network.

A notebook that passes nbval can still show a blank widget in the browser, so this test
starts JupyterLab on loopback (fresh config, random token, fast mode), opens a chapter in
headless Chromium (Debian's, driven by Playwright), runs a widget's cell and the cells it
needs (found from the code: imports, data, models), drags one of the widget's sliders (or
picks another entry of a drop-down), and asserts that the picture the browser shows changed
(pixel difference), that the page raised no JavaScript error, and that it asked for nothing
outside loopback (no CDN). Screenshots go to ``artifacts/browser/``.

``check_widget`` is the whole check as one function, so a scratch run can point it at a
notebook whose widget callback is broken on purpose (it then fails: the picture never changes).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mmcourse.colab import BADGE_SVG

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
CELLS_TIMEOUT_S = 300  # running the cells a widget needs (fast mode, a busy CI machine)


@dataclass(frozen=True)
class WidgetCase:
    """A Panel in a chapter: the cell whose output is ``Panel(...)`` naming ``control``."""

    stem: str
    control: str  # a slider or drop-down of the Panel, by its name in Panel(..., name=IntSlider());
    # "": the first Panel of the notebook and its first slider
    required: bool = True  # False: skip while the chapter is not built yet (or has no Panel)
    slow: bool = False  # needs a model trained first: only with MMCOURSE_BROWSER_SLOW=1
    upload_shows: str = ""  # the Panel has a FileUpload: pick a spoken-digits WAV in it, and the
    # caption must then show this text (and the picture change again)


CASES = [
    WidgetCase("01_multimodal_data", "n_fft"),  # the spectrogram explorer
    WidgetCase("03_convolutions", "kernel"),  # a convolution's output map
    WidgetCase("07_multimodal_learning", "query"),  # the retrieval widget (cached embeddings)
    WidgetCase("08_fine_tuning", "lr", slow=True),  # fine-tuning curves (fast mode trains its small sweep first)
    WidgetCase("11_project_speech_recognition", "utterance", slow=True,  # trains the recogniser first
               upload_shows="your recording"),
    # Panels over trained models: their training cells take minutes in CI, so opt-in.
    WidgetCase("03_convolutions", "channel", slow=True),  # learned feature maps
    WidgetCase("05_attention_and_transformers", "example", slow=True),  # attention
    WidgetCase("09_project_sentiment", "emoji", slow=True),  # the post demo (trains the models first)
    WidgetCase("10_project_vqa", "image", required=False, slow=True),  # attention widget (trains the VQA models first)
    WidgetCase("14_tiny_multimodal_lm", "image", slow=True),  # generation widget (trains the VLMs first)
]


@dataclass
class Lab:
    url: str
    token: str
    root: Path  # the folder JupyterLab serves (copies of the notebooks)
    proc: subprocess.Popen = field(repr=False)
    log: Path = field(repr=False)

    def wait_ready(self, timeout: float = 90) -> None:
        """Block until the server answers (it starts while the browser does)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start:\n{self.log.read_text()}")
            time.sleep(0.25)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def start_lab(workdir: Path) -> Lab:
    """Start JupyterLab on 127.0.0.1 with a fresh config, settings and token, serving
    ``workdir/nb`` (returns at once: see :meth:`Lab.wait_ready`).

    Its kernels run in fast mode and record results into ``workdir`` (not the repo's results/).
    """
    root, cfg = workdir / "nb", workdir / "jupyter"
    root.mkdir(parents=True, exist_ok=True)
    settings = cfg / "settings"
    # Every cell stays in the DOM (no virtual scrolling), and no news / update checks.
    _write_json(settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
                {"windowingMode": "none"})
    _write_json(settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    token, port = secrets.token_hex(16), _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(cfg / "config"), "JUPYTER_DATA_DIR": str(cfg / "data"),
        "JUPYTER_RUNTIME_DIR": str(cfg / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(cfg / "workspaces"), "IPYTHONDIR": str(cfg / "ipython"),
        "MMCOURSE_FAST": "1", "MMCOURSE_RESULTS": str(workdir / "results"),
        "MPLBACKEND": "agg",
    }  # fmt: skip
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly", "--allow-root", "--ServerApp.terminals_enabled=False",
    ]  # fmt: skip
    log = workdir / "jupyterlab.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=root)
    return Lab(f"http://127.0.0.1:{port}", token, root, proc, log)


def stop_lab(lab: Lab) -> None:
    lab.proc.terminate()
    try:
        lab.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        lab.proc.kill()
        lab.proc.wait()


def find_panel_cell(nb_path: Path, control: str) -> tuple[int, list[str]]:
    """Index of the first code cell whose stored output is a live Panel with ``control``,
    and the Panel's controls in order (from its ``text/plain``: ``Panel(a=1, b=2)``)."""
    nb = json.loads(nb_path.read_text())
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = "".join(data.get("text/plain", ""))
            if WIDGET_MIME in data and text.startswith("Panel(") and f"{control}=" in text:
                names = [kv.split("=")[0].strip() for kv in text[len("Panel("):-1].split(", ")]
                return i, [n for n in names if n]
    raise LookupError(f"{nb_path.name}: no cell shows a Panel with a control {control!r}")


def _names(source: str) -> tuple[set[str], set[str]] | None:
    """(names a cell binds, names it reads), or None if it is not plain Python (magics)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound, read


def cells_needed(nb_path: Path, index: int) -> list[int]:
    """The code cells above ``index`` that bind a name cell ``index`` reads, transitively
    (so the test runs the imports and data the widget draws from, not the whole chapter).
    Over-approximates: a name bound anywhere in a cell, even inside a function, counts."""
    cells = json.loads(nb_path.read_text())["cells"]
    names = _names("".join(cells[index]["source"]))
    need = names[1] if names else set()
    out = []
    for i in range(index - 1, -1, -1):
        c = cells[i]
        if c["cell_type"] != "code" or "colab-header" in c.get("metadata", {}).get("tags", []):
            continue
        names = _names("".join(c["source"]))
        if names is None or names[0] & need:
            out.append(i)
            need |= names[1] if names else set()
    return sorted(out)


def find_control(out, control: str, names: list[str]):
    """The control of the Panel in output area ``out`` labelled ``control`` (else the Panel's
    control number ``names.index(control)``); "" means its first slider."""
    if not control:
        return out.locator(".widget-inline-hbox.widget-hslider").first
    rows = out.locator(".widget-inline-hbox")
    labelled = rows.filter(has=out.page.locator(
        "label.widget-label", has_text=re.compile(rf"^\s*{re.escape(control)}\s*$")))
    return labelled if labelled.count() == 1 else rows.nth(names.index(control))


def move_control(page, ctrl) -> tuple[str, str]:
    """Move a slider (drag its handle across the track, as a person would) or pick another
    entry of a drop-down; return the value it shows before and after."""
    kind = ctrl.get_attribute("class") or ""
    if "widget-dropdown" in kind:
        select = ctrl.locator("select")
        before = select.evaluate("(s) => s.options[s.selectedIndex].text")
        n = select.evaluate("(s) => s.options.length")
        current = select.evaluate("(s) => s.selectedIndex")
        select.select_option(index=(current + 1) % n)
        return before, select.evaluate("(s) => s.options[s.selectedIndex].text")
    assert "widget-hslider" in kind, f"cannot move a control of class {kind!r}"
    readout = ctrl.locator(".widget-readout")
    before = readout.inner_text()
    track = ctrl.locator(".noUi-target").bounding_box()
    box = ctrl.locator(".noUi-handle").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    left = x < track["x"] + track["width"] / 2  # drag to the far side of the track
    to = track["x"] + track["width"] * (0.8 if left else 0.2)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(to, y, steps=12)
    page.mouse.up()
    return before, readout.inner_text()


def _pixel_change(a: Path, b: Path) -> float:
    """Fraction of pixels that differ between two screenshots (sizes may differ a little)."""
    from PIL import Image

    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.int16)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=np.int16)
    h, w = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
    changed = np.abs(x[:h, :w] - y[:h, :w]).max(axis=2) > 16
    area = max(x.shape[0] * x.shape[1], y.shape[0] * y.shape[1])
    return float(changed.sum() + area - h * w) / area


def check_widget(lab: Lab, chromium: str, nb_path: Path, control: str, shots: Path,
                 timeout_ms: int = 60_000, name: str = "", upload: Path | None = None,
                 upload_shows: str = "") -> dict:
    """Open ``nb_path`` in Lab, run its Panel's cell (and the cells it needs), move the control
    ``control`` ("" = the first slider); assert the picture changed, no JS error, nothing
    left loopback. With ``upload``, also pick that file in the Panel's file picker and wait for
    the caption to show ``upload_shows``."""
    from playwright.sync_api import sync_playwright

    nb_path = Path(shutil.copy(nb_path, lab.root / nb_path.name))  # Lab edits the copy only
    index, names = find_panel_cell(nb_path, control)
    shots.mkdir(parents=True, exist_ok=True)
    stem = name or nb_path.stem  # names the screenshots
    errors: list[str] = []
    outside: list[str] = []
    t0, times = time.perf_counter(), {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS,
                                    headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(timeout_ms)
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text} ({m.location})")
                if m.type == "error" and m.location.get("url") != BADGE_SVG else None)
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} {r.failure}")
                if r.url != BADGE_SVG else None)

        def route(r):
            url = r.request.url
            if url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
                return r.continue_()
            if url != BADGE_SVG:  # the Colab badge's picture: offline it is just not shown
                outside.append(url)
            return r.abort()

        page.route("**/*", route)
        times["browser"] = time.perf_counter() - t0
        lab.wait_ready()
        times["server"] = time.perf_counter() - t0
        try:
            # A fresh workspace per case: only this notebook open, nothing restored.
            space = re.sub(r"[^a-z0-9-]", "-", stem.lower())
            page.goto(f"{lab.url}/lab/workspaces/{space}/tree/{nb_path.name}?reset&token={lab.token}")
            page.wait_for_function(
                "(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                " return w && w.context && w.context.path === path && w.context.isReady &&"
                " w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
                " && w.sessionContext.session.kernel.status === 'idle'; }", arg=nb_path.name)
            panel_id = page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
            times["lab_ready"] = time.perf_counter() - t0
            # Clear the stored outputs, run the cells the widget needs, then the widget's cell.
            run = [*cells_needed(nb_path, index), index]
            failed = page.evaluate(
                """async ([cells, ms]) => {
                    const app = window.jupyterapp, nb = app.shell.currentWidget.content;
                    await app.commands.execute('notebook:clear-all-cell-outputs');
                    const work = async () => {
                        for (const i of cells) {
                            nb.activeCellIndex = i;
                            if (!(await app.commands.execute('notebook:run-cell'))) return i;
                        }
                        return -1;
                    };
                    const late = new Promise((r) => setTimeout(() => r(-2), ms));
                    return await Promise.race([work(), late]);
                }""", [run, CELLS_TIMEOUT_S * 1000])
            times["cells_run"] = time.perf_counter() - t0
            assert failed != -2, f"{stem}: cells {run} did not finish in {CELLS_TIMEOUT_S} s"
            assert failed == -1, f"{stem}: cell {failed + 1} failed in JupyterLab (ran {run})"
            out = page.locator(f"[id='{panel_id}'] .jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")
            img = out.locator(".jupyter-widgets img.widget-image, img.jupyter-widgets.widget-image")
            img.first.wait_for(state="visible")
            img = img.first
            page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
            out.scroll_into_view_if_needed()
            before_src = img.get_attribute("src")
            img.screenshot(path=shots / f"{stem}_before.png")
            value_before, value_after = move_control(page, find_control(out, control, names))
            assert value_after != value_before, f"{stem}: the control {control!r} did not move"
            # Explicit wait: the kernel redraws and the widget swaps in a new picture.
            try:
                page.wait_for_function(
                    "([el, old]) => el.src !== old && el.complete && el.naturalWidth > 0",
                    arg=[img.element_handle(), before_src], timeout=min(timeout_ms, 30_000))
            except Exception as err:
                raise AssertionError(
                    f"{stem}: moved {control or 'the slider'} from {value_before} to "
                    f"{value_after} but the widget's picture never changed") from err
            times["redrawn"] = time.perf_counter() - t0
            img.screenshot(path=shots / f"{stem}_after.png")
            if upload:  # the file picker, as a learner uses it
                picked_src = img.get_attribute("src")
                with page.expect_file_chooser() as chooser:  # the browser's file dialog
                    out.locator("button.jupyter-button", has_text="your file").first.click()
                chooser.value.set_files(str(upload))
                page.wait_for_function(
                    "([el, old]) => el.src !== old && el.complete && el.naturalWidth > 0",
                    arg=[img.element_handle(), picked_src], timeout=min(timeout_ms, 30_000))
                caption = out.locator(".widget-html-content").all_inner_texts()
                assert any(upload_shows in c for c in caption), (
                    f"{stem}: after picking {upload.name} the caption shows {caption}, not {upload_shows!r}")
                times["uploaded"] = time.perf_counter() - t0
                img.screenshot(path=shots / f"{stem}_upload.png")
            # For the README: JupyterLab with the widget at the top, file browser closed.
            page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
            out.evaluate("(el) => { el.scrollIntoView({block: 'start'});"
                         " const o = el.closest('.jp-WindowedPanel-outer'); if (o) o.scrollBy(0, -24); }")
            page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
            page.screenshot(path=shots / f"{stem}_lab.png")
        except Exception:
            with contextlib.suppress(Exception):
                page.screenshot(path=shots / f"{stem}_failed.png")
            raise
        finally:
            with contextlib.suppress(Exception):  # free the kernel; never mask the real error
                page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
            browser.close()
    change = _pixel_change(shots / f"{stem}_before.png", shots / f"{stem}_after.png")
    assert change > 0.01, f"{stem}: the picture changed in only {change:.2%} of its pixels"
    assert not outside, f"{stem}: the page asked for URLs outside loopback (a CDN?): {outside}"
    assert not errors, f"{stem}: the browser logged JavaScript errors: {errors}"
    return {"changed": change, "value_before": value_before, "value_after": value_after,
            "cell": index, "seconds": {k: round(v, 1) for k, v in times.items()}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium) -> Iterator[Lab]:
    server = start_lab(tmp_path_factory.mktemp("lab"))
    try:
        yield server
    finally:
        stop_lab(server)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.stem}-{c.control or 'first'}" for c in CASES])
def test_widget_redraws_in_jupyterlab(case: WidgetCase, lab: Lab, chromium: str,
                                      artifacts_dir: Path):
    if case.slow and os.environ.get("MMCOURSE_BROWSER_SLOW") != "1":
        pytest.skip("trains a model first (minutes): set MMCOURSE_BROWSER_SLOW=1 to run it")
    nb_path = NB_DIR / f"{case.stem}.ipynb"
    if not nb_path.is_file():
        if case.required:
            pytest.fail(f"{nb_path.relative_to(ROOT)} is missing (build it with tools/notebooks.py)")
        pytest.skip(f"{nb_path.name} is not built yet")
    if not case.required:
        try:
            find_panel_cell(nb_path, case.control)
        except LookupError as err:
            pytest.skip(str(err))
    upload = None
    if case.upload_shows:  # a spoken number, as a learner's recording would be: 16 kHz WAV
        from mmcourse.audio import to_wav_bytes
        from mmcourse.speech.baseline import espeak

        upload = artifacts_dir / "browser" / "spoken_digits.wav"
        upload.parent.mkdir(parents=True, exist_ok=True)
        upload.write_bytes(to_wav_bytes(espeak("four two seven", sample_rate=16000), 16000))
    t0 = time.perf_counter()
    got = check_widget(lab, chromium, nb_path, case.control, artifacts_dir / "browser",
                       name=f"{case.stem}-{case.control or 'first'}", upload=upload,
                       upload_shows=case.upload_shows)
    print(f"{case.stem}: picture changed in {got['changed']:.1%} of pixels "
          f"({got['value_before']} -> {got['value_after']}) in {time.perf_counter() - t0:.0f} s; "
          f"seconds from the start: {got['seconds']}")
