"""Solutions to the exercises of chapter 13 (the customer-service assistant). Each runs in seconds
(MiniLM embeddings are cached after the first call) and asserts its answer."""

from __future__ import annotations

import numpy as np


def exercise_1() -> dict:
    """The share of labelled test tweets the knowledge base is unsure about, by threshold."""
    from mmcourse.assistant.knowledge import KnowledgeBase
    from mmcourse.data.intents import LABELS_CSV, intent_data

    texts = intent_data("test", LABELS_CSV).texts
    best = KnowledgeBase().scores(texts).max(1).values.numpy()  # [N] best cosine per tweet
    share = {t: float(np.mean(best < t)) for t in (0.2, 0.3, 0.4, 0.5)}
    values = list(share.values())
    assert all(a <= b for a, b in zip(values, values[1:], strict=False)), share  # a higher bar: more "unsure"
    assert values[-1] > values[0], share
    return share


def exercise_2() -> dict:
    """Few-shot intent accuracy with 10 labels per intent and with every training label."""
    from mmcourse.assistant.intents import FewShotIntent, embed, evaluate
    from mmcourse.data.intents import INTENTS, LABELS_CSV, intent_data

    tr, te = intent_data("train", LABELS_CSV), intent_data("test", LABELS_CSV)
    y_tr, y_te = np.asarray(tr.labels()), np.asarray(te.labels())
    z_tr, z_te = embed(tr.texts, "intents-train"), embed(te.texts, "intents-test")  # [N, 384]
    rng = np.random.default_rng(0)
    small = np.concatenate([rng.choice(np.flatnonzero(y_tr == k), 10, replace=False) for k in range(len(INTENTS))])
    acc_small = evaluate(y_te, FewShotIntent().fit(z_tr[small], y_tr[small]).predict(z_te))["accuracy"]
    acc_all = evaluate(y_te, FewShotIntent().fit(z_tr, y_tr).predict(z_te))["accuracy"]
    chance = float(np.max(np.bincount(y_te)) / len(y_te))
    assert acc_small > chance and acc_all > acc_small, (acc_small, acc_all, chance)
    return {"labels_60": acc_small, f"labels_{len(y_tr)}": acc_all, "points_bought": 100 * (acc_all - acc_small)}


def exercise_3() -> dict:
    """A too-long WAV and a too-large PNG are refused with a 4xx naming the field and the limit (the
    checks run before any model, so stand-in components are enough)."""
    import torch
    from fastapi.testclient import TestClient

    from mmcourse.assistant.app import AppLimits, Components, create_app
    from mmcourse.assistant.dialogue import Assistant
    from mmcourse.assistant.knowledge import KnowledgeBase
    from mmcourse.audio import to_wav_bytes
    from mmcourse.deploy.serve import encode_png

    def encoder(texts):  # a stand-in encoder: no MiniLM needed for refusals
        return torch.nn.functional.normalize(torch.ones(len(texts), 4), dim=-1)

    bot = Assistant(KnowledgeBase(encoder=encoder), lambda text: ("other", 1.0))
    limits = AppLimits(max_image_side=64, max_audio_seconds=1.0)
    client = TestClient(create_app(Components(bot, items=object(), listener=object()), limits))
    long_wav = to_wav_bytes(torch.zeros(3 * 16000), 16000)  # 3 s of silence
    big_png = encode_png(np.zeros((100, 100), dtype=np.float32))
    r_audio = client.post("/audio", files={"audio": ("long.wav", long_wav, "audio/wav")})
    r_image = client.post("/image", files={"image": ("big.png", big_png, "image/png")})
    for r, field, limit in ((r_audio, "audio", "1"), (r_image, "image", "64")):
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        msg = r.json()["error"]
        assert field in msg and limit in msg, msg
    return {"audio": (r_audio.status_code, r_audio.json()["error"]),
            "image": (r_image.status_code, r_image.json()["error"])}
