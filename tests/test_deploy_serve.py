"""The HTTP service against a real uvicorn on a free loopback port: answers, every bad input, the queue."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")

import httpx  # noqa: E402

from mmcourse.deploy.loadtest import compare, load_test  # noqa: E402
from mmcourse.deploy.serve import (  # noqa: E402
    Limits,
    OnnxModel,
    create_app,
    decode_png,
    decode_wav,
    encode_png,
    running,
)
from tests._deploy_helpers import png, service_model, wav  # noqa: E402

LIMITS = Limits(max_body_bytes=200_000, max_audio_seconds=2.0, max_batch=8, max_wait_ms=5, max_queue=64)


@pytest.fixture(scope="module")
def model() -> OnnxModel:
    return OnnxModel(service_model())


@pytest.fixture(scope="module")
def url(model):
    with running(create_app(model, LIMITS)) as base:
        yield base


def good_files(seed: int = 0) -> dict:
    return {"image": ("d.png", png(seed=seed), "image/png"), "audio": ("d.wav", wav(seed=seed), "audio/wav")}


def post(url: str, **kw) -> httpx.Response:
    return httpx.post(f"{url}/predict", timeout=10, **kw)


def test_predict_answers_class_probabilities_version_latency(url, model):
    r = post(url, files=good_files())
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"class", "label", "probabilities", "model_version", "latency_ms", "batch_size"}
    probs = np.array(body["probabilities"])
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-4 and body["class"] == int(probs.argmax())
    direct = model.predict(decode_png(png(seed=0), 28)[None], decode_wav(wav(seed=0), 8000, 8000, 2.0)[None])[0]
    np.testing.assert_allclose(probs, direct, atol=1e-5)  # the service computes what the model computes
    assert body["model_version"].startswith("test-model@") and body["latency_ms"] > 0


def test_health_and_page(url):
    h = httpx.get(f"{url}/health").json()
    assert h["status"] == "ok" and h["max_queue"] == 64 and h["runtime"] == "onnxruntime"
    page = httpx.get(url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'type="file"' in page.text and "predict" in page.text


def test_colour_image_and_other_sample_rate_are_accepted(url):
    files = {"image": ("c.png", png(mode="RGB"), "image/png"), "audio": ("a.wav", wav(0.5, 16000), "audio/wav")}
    assert post(url, files=files).status_code == 200


def _bad_cases() -> dict[str, tuple[int, str, dict]]:
    g = good_files()
    return {
        "missing audio": (422, "missing field 'audio'", dict(files={"image": g["image"]})),
        "missing image": (422, "missing field 'image'", dict(files={"audio": g["audio"]})),
        "audio sent as text field": (422, "missing field 'audio'", dict(files={"image": g["image"]}, data={"audio": "x"})),
        "json body": (415, "multipart/form-data", dict(json={"image": "x", "audio": "y"})),
        "not a png": (415, "must be a PNG", dict(files={"image": ("x.png", b"GIF89a....", "image/png"), "audio": g["audio"]})),
        "not a wav": (415, "must be a WAV", dict(files={"image": g["image"], "audio": ("x.wav", b"ID3\x03mp3...", "audio/wav")})),
        "corrupt png": (400, "corrupt PNG", dict(files={"image": ("x.png", png()[:45], "image/png"), "audio": g["audio"]})),
        "corrupt wav": (400, "corrupt WAV", dict(files={"image": g["image"], "audio": ("x.wav", wav()[:40], "audio/wav")})),
        "wrong image size": (422, "28x28", dict(files={"image": ("x.png", png((64, 48)), "image/png"), "audio": g["audio"]})),
        "audio too long": (422, "limit is 2 s", dict(files={"image": g["image"], "audio": ("x.wav", wav(3.0), "audio/wav")})),
        "body too large": (413, "over the limit", dict(files={"image": ("x.png", b"\0" * 300_000, "image/png"),
                                                             "audio": g["audio"]})),
    }


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_input_gets_a_clear_4xx_and_the_service_keeps_serving(url, case):
    status, message, kw = _bad_cases()[case]
    r = post(url, **kw)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json") and message in r.json()["error"]
    assert post(url, files=good_files()).status_code == 200


def test_streamed_body_over_the_limit_without_content_length(url):
    def chunks():  # no Content-Length: the limit must be enforced while reading
        yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n\r\n"
        for _ in range(30):
            yield b"\0" * 10_000

    r = httpx.post(f"{url}/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "over the limit" in r.json()["error"]
    assert post(url, files=good_files()).status_code == 200


def test_malformed_multipart_is_a_400(url):
    r = httpx.post(f"{url}/predict", content=b"garbage", headers={"content-type": "multipart/form-data"})
    assert r.status_code in (400, 422) and "error" in r.json()


def test_a_flood_beyond_the_queue_gets_503_with_retry_after(model):
    limits = Limits(max_batch=2, max_wait_ms=300, max_queue=2)  # a long window keeps requests waiting

    async def flood(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            return await asyncio.gather(*(client.post("/predict", files=good_files(i)) for i in range(12)))

    with running(create_app(model, limits)) as url:
        answers = asyncio.run(flood(url))
        codes = [r.status_code for r in answers]
        assert set(codes) <= {200, 503} and codes.count(503) >= 1 and codes.count(200) >= 2
        for r in answers:
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        assert httpx.get(f"{url}/health").json()["queued"] == 0  # nothing left behind
        assert post(url, files=good_files()).status_code == 200


def test_micro_batching_groups_concurrent_requests(model):
    with running(create_app(model, Limits(max_batch=8, max_wait_ms=50))) as url:
        rep = load_test(url, [good_files(i) for i in range(4)], requests=32, concurrency=8)
    assert rep["ok"] == 32 and rep["errors"] == 0
    assert rep["mean_batch"] > 2  # 8 requests in flight, a 50 ms window: they share forward passes


def test_load_test_is_loopback_only_and_counts_refusals(url):
    with pytest.raises(ValueError, match="127.0.0.1"):
        load_test("http://example.com", [good_files()], requests=1)
    rep = load_test(url, [{"image": good_files()["image"]}], requests=5, concurrency=2)  # every request is a 422
    assert rep["ok"] == 0 and rep["errors"] == 5 and rep["status"] == {"422": 5}


def test_decoders_directly():
    img = decode_png(png(), 28)
    assert img.shape == (1, 28, 28) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    np.testing.assert_array_equal(decode_png(encode_png(img), 28), img)  # 8-bit levels survive the round trip
    x = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    assert np.abs(decode_png(encode_png(x), 28) - x).max() <= 0.5 / 255 + 1e-6  # floats: rounded to 1/255
    w = decode_wav(wav(0.5), 8000, 8000, 2.0)
    assert w.shape == (8000,) and np.all(w[4000:] == 0)  # padded with silence to 1 s
    import soundfile as sf

    long = decode_wav(wav(1.5), 8000, 8000, 2.0)  # cropped to the first second
    full, _ = sf.read(io.BytesIO(wav(1.5)), dtype="float32")
    np.testing.assert_array_equal(long, full[:8000])


def test_compare_alternates_rounds_and_sums_errors(model):
    with running(create_app(model, Limits(max_batch=1))) as a, running(create_app(model, Limits(max_batch=8))) as b:
        out = compare({"off": a, "on": b}, [good_files()], requests=12, concurrency=4, rounds=3, warmup=4)
    assert list(out) == ["off", "on"]
    for rep in out.values():
        assert len(rep["rounds_rps"]) == 3 and rep["requests_total"] == 36 and rep["errors"] == 0
        assert rep["throughput_rps"] == sorted(rep["rounds_rps"])[1]  # the median round
    assert out["off"]["mean_batch"] == 1.0
