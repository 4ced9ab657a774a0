"""The two VLM designs of chapter 14, the prompt format and constrained answers."""

from __future__ import annotations

import pytest
import torch

from mmcourse.models.gpt import GPT, GPTConfig, generate, lm_loss
from mmcourse.models.vlm import (
    IGNORE,
    Batches,
    CrossAttnVLM,
    ForFit,
    PrefixVLM,
    answer,
    answer_constraint,
    collate,
    encode_pair,
    vqa_vocab,
)

P, F = 4, 12  # image tokens, feature size


def _gpt(seed: int = 0, block: int = 20) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=30, block_size=block, n_layer=2, n_head=2, n_embd=32))


def test_zero_gate_makes_cross_attention_model_the_plain_lm():
    g = _gpt().eval()
    m = CrossAttnVLM(g, F, P).eval()
    idx, img = torch.randint(0, 30, (3, 7)), torch.randn(3, P, F)
    assert torch.equal(m(idx, image=img), g(idx))  # exactly: tanh(0) = 0
    assert m.gates() == [(0.0, 0.0), (0.0, 0.0)]
    with torch.no_grad():
        m.xattn[0].attn_gate.fill_(1.0)
    assert (m(idx, image=img) - g(idx)).abs().max() > 1e-3  # an open gate lets the image in
    assert (m(idx, image=img) - m(idx, image=img.flip(0))).abs().max() > 1e-3


def test_gates_get_gradients_at_zero():
    m = CrossAttnVLM(_gpt(), F, P)
    idx, img = torch.randint(0, 30, (2, 6)), torch.randn(2, P, F)
    lm_loss(m(idx, image=img), torch.randint(0, 30, (2, 6))).backward()
    assert all(float(x.attn_gate.grad.abs()) > 0 for x in m.xattn)  # training can open them


@pytest.mark.parametrize("cls", [PrefixVLM, CrossAttnVLM])
def test_vlm_cache_equals_recompute_and_image_matters(cls):
    m = cls(_gpt(1), F, P).eval()
    with torch.no_grad():
        for x in getattr(m, "xattn", []):
            x.attn_gate.fill_(0.5)
            x.ff_gate.fill_(0.5)
    idx, img = torch.randint(0, 30, (3, 5)), torch.randn(3, P, F)
    a = generate(m, idx, 8, image=img, temperature=0)
    b = generate(m, idx, 8, image=img, temperature=0, use_cache=False)
    assert torch.equal(a, b)
    cache = m.new_cache()
    full = m(idx, image=img)
    step = torch.cat([m(idx[:, :3], image=img, cache=cache), m(idx[:, 3:], image=img, cache=cache)], 1)
    torch.testing.assert_close(step, full, atol=1e-5, rtol=0)
    assert (m(idx, image=img) - m(idx, image=img.roll(1, 0))).abs().max() > 1e-3


def test_prefix_attention_over_image_tokens():
    m = PrefixVLM(_gpt(2), F, P).eval()
    idx, img = torch.randint(0, 30, (2, 5)), torch.randn(2, P, F)
    logits, att = m(idx, image=img, return_attention=True)
    assert logits.shape == (2, 5, 30)
    assert att["self"][0].shape == (2, 2, P + 5, P + 5) and att["image"][0].shape == (2, 2, 5, P)
    torch.testing.assert_close(logits, m(idx, image=img), atol=1e-5, rtol=0)
    # causal: the text sees the image, the image does not see the text
    w = att["self"][0]
    assert torch.all(w[:, :, :P, P:] == 0) and torch.all(att["image"][0].sum(-1) > 0)
    _, steps = generate(m, idx, 3, image=img, temperature=0, return_attention=True)
    assert steps[1]["image"][0].shape == (2, 2, 1, P)


def test_prefix_counts_image_positions_in_the_context():
    m = PrefixVLM(_gpt(block=12), F, P)
    with pytest.raises(ValueError, match="block_size"):
        generate(m, torch.zeros(1, 6, dtype=torch.long), 4, image=torch.randn(1, P, F))  # 4 + 6 + 3 > 12
    generate(m, torch.zeros(1, 6, dtype=torch.long), 3, image=torch.randn(1, P, F))  # 4 + 6 + 2 = 12
    with pytest.raises(ValueError, match="image"):
        m(torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[B=1, P=4, F=12\]"):
        m(torch.zeros(1, 3, dtype=torch.long), image=torch.randn(1, P + 1, F))
    with pytest.raises(ValueError, match="no room"):
        PrefixVLM(_gpt(block=12), F, 12)


def test_prompt_format_loss_on_the_answer_only():
    vocab = vqa_vocab(["what color is the shape?"], ["blue", "red"], ["a blue circle"])
    x, y = encode_pair(vocab, "what color is the shape?", "blue")
    assert vocab.decode(x) == "what color is the shape ? blue"  # inputs: <bos> prompt answer
    assert x[0] == vocab.bos_id and (y == IGNORE).sum() == 6
    assert [vocab.itos[int(t)] for t in y[y != IGNORE]] == ["blue", "<eos>"]
    xs, ys = collate([(x, y), encode_pair(vocab, "what color?", "red")], vocab.pad_id)
    assert xs.shape == ys.shape == (2, 8) and int(xs[1, -1]) == vocab.pad_id and int(ys[1, -1]) == IGNORE


def test_constrained_answers_are_always_valid():
    answers = ["blue", "red", "yes", "no"]
    vocab = vqa_vocab(["is it blue?", "what color is it?"], answers)
    m = PrefixVLM(_gpt(3, block=16), F, P)
    m.gpt.wte = torch.nn.Embedding(len(vocab), 32)  # a vocabulary of this size
    m.gpt.lm_head = torch.nn.Linear(32, len(vocab), bias=False)
    prompts = ["is it blue?", "what color is it?"] * 20
    img = torch.randn(len(prompts), P, F)
    gen = torch.Generator().manual_seed(0)
    free = answer(m, vocab, prompts, img, temperature=2.0, generator=gen)
    assert any(a not in answers for a in free)  # an untrained model says anything ...
    c = answer_constraint(vocab, answers)
    tied = answer(m, vocab, prompts, img, temperature=2.0, generator=gen, constraint=c)
    assert all(a in answers for a in tied)  # ... constrained, only valid answers
    greedy = answer(m, vocab, prompts, img, temperature=0, constraint=c)
    assert all(a in answers for a in greedy)
    with pytest.raises(ValueError, match="one image per prompt"):
        answer(m, vocab, prompts, img[:3])


def test_batches_feed_fit_shapes():
    vocab = vqa_vocab(["what color is the shape?"], ["blue"])
    pairs = [encode_pair(vocab, "what color is the shape?", "blue"), encode_pair(vocab, "what color?", "blue")]
    x, y = collate(pairs, vocab.pad_id)
    feats = torch.randn(5, P, F)
    b = Batches(x, y, torch.tensor([4, 0]), feats, batch_size=1)
    (xb, yb), (xb2, yb2) = list(b)
    assert xb["idx"].shape == (1, 8) and xb2["idx"].shape == (1, 5)  # cut to the row's length
    assert torch.equal(xb["image"][0], feats[4])
    m = ForFit(PrefixVLM(_gpt(block=16), F, P))
    assert m(xb).shape == (1, 8, 30)
    with pytest.raises(ValueError, match="both"):
        Batches(x, y, torch.tensor([0, 1]))


def test_generation_figure_is_lint_clean_and_checks_shapes():
    from matplotlib.figure import Figure

    from mmcourse.viz import figure_problems
    from mmcourse.viz.generation import draw_generation

    att = torch.softmax(torch.randn(3, 16), -1) * 0.5  # 3 tokens, half their attention on the image
    fig = Figure(figsize=(8, 2.5))
    draw_generation(fig, torch.rand(3, 64, 64), "what color is the shape?", ["blue", "<eos>", "<eos>"], att)
    assert figure_problems(fig) == [] and len(fig.axes) == 5  # image + 3 tokens + colour bar
    assert fig.axes[1].get_title().endswith("50% on image")
    with pytest.raises(ValueError, match=r"\[N, 16\]"):
        draw_generation(Figure(), torch.rand(3, 64, 64), "q", ["a"], torch.rand(1, 9))
    with pytest.raises(ValueError, match="tokens"):
        draw_generation(Figure(), torch.rand(3, 64, 64), "q", ["a", "b"], att)
