"""The GPT of chapter 14: causal masking, KV cache == recomputation, sampling, constraints, context errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmcourse.models import count_parameters
from mmcourse.models.gpt import GPT, Constraint, GPTConfig, KVCache, generate, lm_loss, sample_next


def _gpt(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(**{"vocab_size": 23, "block_size": 24, "n_layer": 2, "n_head": 2, "n_embd": 32, **kw})
    return GPT(cfg).eval()


def test_no_token_sees_the_future():
    g = _gpt()
    idx = torch.randint(0, 23, (2, 10))
    changed = idx.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 23  # change positions 6..9 only
    a, b = g(idx), g(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6], atol=1e-6, rtol=0)  # positions < 6 are blind to it
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-3  # and the later ones do see it


def test_attention_weights_are_lower_triangular_and_sum_to_one():
    g = _gpt()
    _, att = g(torch.randint(0, 23, (3, 8)), return_attention=True)
    for w in att["self"]:  # [B, H, T, T]
        assert w.shape == (3, 2, 8, 8)
        assert torch.all(w.triu(1) == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 8))


def test_return_attention_path_equals_fused_path():
    g = _gpt()
    idx = torch.randint(0, 23, (2, 9))
    torch.testing.assert_close(g(idx), g(idx, return_attention=True)[0], atol=1e-5, rtol=0)


def test_kv_cache_logits_equal_full_recompute():
    g = _gpt()
    idx = torch.randint(0, 23, (2, 12))
    full = g(idx)  # [B, 12, V]
    cache = g.new_cache()
    parts = [g(idx[:, :5], cache=cache)] + [g(idx[:, t : t + 1], cache=cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=1e-5, rtol=0)
    assert cache.length == 12 and isinstance(cache, KVCache)


@pytest.mark.parametrize("temperature,top_k", [(0.0, None), (1.0, None), (0.7, 5)])
def test_generation_with_cache_equals_without(temperature, top_k):
    g = _gpt(1)
    idx = torch.randint(0, 23, (3, 4))
    outs = []
    for use_cache in (True, False):
        gen = torch.Generator().manual_seed(3)
        outs.append(generate(g, idx, 15, temperature=temperature, top_k=top_k, generator=gen, use_cache=use_cache))
    assert outs[0].shape == (3, 15)
    assert torch.equal(outs[0], outs[1])


def test_greedy_is_the_argmax_of_the_full_model():
    g = _gpt(2)
    idx = torch.randint(0, 23, (2, 3))
    new = generate(g, idx, 6, temperature=0)
    seq = idx
    for t in range(6):
        nxt = g(seq)[:, -1].argmax(-1)
        assert torch.equal(nxt, new[:, t])
        seq = torch.cat([seq, nxt[:, None]], 1)


def test_sampling_temperature_and_top_k():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).repeat(20000, 1)
    gen = torch.Generator().manual_seed(0)
    got = sample_next(logits, 1.0, generator=gen)
    freq = torch.bincount(got, minlength=4).float() / len(got)
    torch.testing.assert_close(freq, logits[0].softmax(0), atol=0.015, rtol=0)  # samples follow softmax
    cold = sample_next(logits, 0.25, generator=gen)
    assert (cold == 0).float().mean() > 0.95  # low temperature: nearly greedy
    top2 = sample_next(logits, 5.0, top_k=2, generator=gen)
    assert set(top2.tolist()) == {0, 1}  # only the 2 largest
    assert torch.equal(sample_next(logits[:3], 0.0), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, -1.0)
    with pytest.raises(ValueError, match="top_k"):
        sample_next(logits, 1.0, top_k=0)


def test_eos_stops_generation():
    g = _gpt(3)
    idx = torch.randint(0, 23, (4, 3))
    first = generate(g, idx, 1, temperature=0)[:, 0]
    eos = int(first[0])  # make the first row's greedy token the "end of sequence"
    new = generate(g, idx, 10, temperature=0, eos_id=eos)
    assert int(new[0, 0]) == eos
    assert torch.all(new[0] == eos)  # after eos: eos only


def test_constraint_trie_and_constrained_generation():
    c = Constraint([[5, 2], [7, 2], [7, 8, 2]])
    assert c.allowed([]) == [5, 7] and c.allowed([7]) == [2, 8] and c.allowed([5, 2]) == []
    with pytest.raises(ValueError, match="not the start"):
        c.allowed([9])
    g = _gpt(4)
    valid = {(5, 2), (7, 2), (7, 8, 2)}
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        new = generate(g, torch.randint(0, 23, (16, 3)), 4, temperature=3.0, eos_id=2, constraint=c, generator=gen)
        for row in new.tolist():
            k = row.index(2) + 1
            assert tuple(row[:k]) in valid and all(t == 2 for t in row[k:])
    with pytest.raises(ValueError, match="at least one"):
        Constraint([])


def test_prompt_longer_than_the_context_is_a_clear_error():
    g = _gpt()
    with pytest.raises(ValueError, match="block_size"):
        g(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(g, torch.zeros(1, 20, dtype=torch.long), 10)
    generate(g, torch.zeros(1, 20, dtype=torch.long), 5)  # 20 + 5 - 1 positions fit in 24
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        g(torch.zeros(5, dtype=torch.long))


def test_weight_tying_and_loss():
    g = _gpt()
    assert g.lm_head.weight is g.wte.weight
    n = count_parameters(g)
    assert n == sum(p.numel() for p in {id(p): p for p in g.parameters()}.values())
    logits = torch.randn(2, 3, 23)
    y = torch.tensor([[1, 2, -100], [4, -100, -100]])
    ref = nn.functional.cross_entropy(logits[y != -100], y[y != -100])
    torch.testing.assert_close(lm_loss(logits, y), ref)


def test_a_gpt_learns_a_sequence():
    """A few hundred steps fit a repeating pattern: the loss is near 0 and greedy continuation copies it."""
    g = _gpt(5).train()
    pattern = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6]).repeat(3)[None]  # [1, 24]
    opt = torch.optim.AdamW(g.parameters(), lr=3e-3)
    for _ in range(150):
        loss = lm_loss(g(pattern[:, :-1]), pattern[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.05
    new = generate(g, pattern[:, :8], 8, temperature=0)
    assert torch.equal(new[0], pattern[0, 8:16])
