"""The service's HTML page in headless Chromium: upload a PNG and a WAV, see the service's answer."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")

import httpx  # noqa: E402

from mmcourse.deploy.serve import create_app, running  # noqa: E402
from tests._deploy_helpers import CHROMIUM_FLAGS as FLAGS  # noqa: E402
from tests._deploy_helpers import loopback_only, png, service_model, wav  # noqa: E402


def test_page_uploads_png_and_wav_and_shows_the_answer(chromium, tmp_path, artifacts_dir):
    from playwright.sync_api import sync_playwright

    (tmp_path / "digit.png").write_bytes(png(seed=3))
    (tmp_path / "digit.wav").write_bytes(wav(seed=3))
    with running(create_app(service_model())) as url:
        expected = httpx.post(f"{url}/predict", files={"image": ("d.png", png(seed=3), "image/png"),
                                                       "audio": ("d.wav", wav(seed=3), "audio/wav")}).json()
        errors: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            outside = loopback_only(page)  # the page must load nothing from the internet
            page.goto(url)
            assert page.text_content("#answer") == "-"
            page.set_input_files("#image", str(tmp_path / "digit.png"))
            page.set_input_files("#audio", str(tmp_path / "digit.wav"))
            page.click("#send")
            page.wait_for_function("document.getElementById('result').textContent.includes('model_version')")
            answer = page.text_content("#answer")
            result = page.text_content("#result")
            page.screenshot(path=str(artifacts_dir / "deploy_page.png"))
            browser.close()
    assert answer.startswith(expected["label"] + " (") and "%" in answer
    assert f'"class": {expected["class"]}' in result
    assert not errors and not outside, (errors, outside)
