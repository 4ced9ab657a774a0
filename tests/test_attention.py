"""Scaled dot-product attention, masks, multi-head attention and positional encodings."""

import math

import pytest
import torch
from torch import nn

from mmcourse.models.attention import (
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    padding_mask,
    scaled_dot_product_attention,
)
from mmcourse.models.positional import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)

REF_MHA_SUM = 5.029840  # torch.manual_seed(0); recorded with torch 2.11 (CPU)


def _qkv(seed=0, b=2, tq=4, tk=6, d=8):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, tq, d, generator=g), torch.randn(b, tk, d, generator=g),
            torch.randn(b, tk, d, generator=g))


def test_attention_matches_formula_and_torch():
    q, k, v = _qkv()
    out, w = scaled_dot_product_attention(q, k, v)
    ref_w = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(w, ref_w)
    torch.testing.assert_close(out, ref_w @ v)
    torch.testing.assert_close(out, nn.functional.scaled_dot_product_attention(q, k, v), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4))


def test_padding_mask_gives_zero_weight_to_padding():
    q, k, v = _qkv()
    keep = padding_mask(torch.tensor([6, 3]), 6)  # [B, Tk]
    assert keep.tolist()[1] == [True, True, True, False, False, False]
    out, w = scaled_dot_product_attention(q, k, v, keep[:, None, :])
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4))
    assert float(w[1, :, 3:].abs().max()) == 0.0
    # Padded keys cannot influence the output: change them, nothing moves.
    v2 = v.clone()
    v2[1, 3:] = 100.0
    k2 = k.clone()
    k2[1, 3:] = -7.0
    torch.testing.assert_close(scaled_dot_product_attention(q, k2, v2, keep[:, None, :])[0][1], out[1])


def test_causal_mask_hides_the_future():
    x = torch.randn(1, 5, 8, generator=torch.Generator().manual_seed(1))
    m = causal_mask(5)
    assert m.sum().item() == 15 and m[0].tolist() == [True, False, False, False, False]
    out, w = scaled_dot_product_attention(x, x, x, m)
    assert float(w.triu(1).abs().max()) == 0.0
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 5))
    x2 = x.clone()
    x2[0, 3:] += 5.0  # change the future: the first 3 outputs stay the same
    torch.testing.assert_close(scaled_dot_product_attention(x2, x2, x2, m)[0][0, :3], out[0, :3])


@pytest.mark.parametrize("masked", [False, True])
def test_mha_equals_torch_with_copied_weights(masked):
    torch.manual_seed(0)
    b, t, s, d, h = 3, 5, 7, 16, 4
    x, mem = torch.randn(b, t, d), torch.randn(b, s, d)
    ref = nn.MultiheadAttention(d, h, batch_first=True).eval()
    ours = MultiHeadAttention(d, h).load_torch(ref).eval()
    keep = padding_mask(torch.tensor([7, 4, 2]), s) if masked else None
    with torch.no_grad():
        y_ref, w_ref = ref(x, mem, mem, key_padding_mask=None if keep is None else ~keep,
                           average_attn_weights=False)
        y, w = ours(x, mem, key_mask=keep, return_attention=True)
        y_fast = ours(x, mem, key_mask=keep)  # the fused path gives the same answer
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, w_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y_fast, y_ref, atol=1e-5, rtol=1e-5)
    assert w.shape == (b, h, t, s)


def test_mha_causal_equals_torch():
    torch.manual_seed(1)
    x = torch.randn(2, 6, 12)
    ref = nn.MultiheadAttention(12, 3, batch_first=True).eval()
    ours = MultiHeadAttention(12, 3).load_torch(ref).eval()
    with torch.no_grad():
        y_ref, _ = ref(x, x, x, attn_mask=~causal_mask(6))
        y, w = ours(x, attn_mask=causal_mask(6), return_attention=True)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    assert float(w.triu(1).abs().max()) == 0.0


def test_mha_seeded_reference_value():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.arange(24, dtype=torch.float32).view(1, 3, 8) / 10
    with torch.no_grad():
        y = mha(x)
    assert y.shape == (1, 3, 8)
    assert float(y.sum()) == pytest.approx(REF_MHA_SUM, abs=1e-4)


def test_combine_masks_shapes():
    keep = padding_mask(torch.tensor([2, 3]), 3)
    m = combine_masks(causal_mask(3), keep, 2, 3, 3)
    assert m.shape == (2, 1, 3, 3)
    assert m[0, 0].tolist() == [[True, False, False], [True, True, False], [True, True, False]]


@pytest.mark.parametrize("bad", [
    lambda: scaled_dot_product_attention(torch.randn(4, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 8)),
    lambda: scaled_dot_product_attention(torch.randn(2, 4, 8), torch.randn(2, 4, 6), torch.randn(2, 4, 8)),
    lambda: scaled_dot_product_attention(torch.randn(2, 4, 8), torch.randn(2, 5, 8), torch.randn(2, 4, 8)),
    lambda: scaled_dot_product_attention(*_qkv(), mask=torch.ones(4, 6)),  # not bool
    lambda: scaled_dot_product_attention(*_qkv(), mask=torch.ones(4, 5, dtype=torch.bool)),
    lambda: MultiHeadAttention(10, 3),
    lambda: MultiHeadAttention(8, 2)(torch.randn(2, 3, 6)),
    lambda: MultiHeadAttention(8, 2)(torch.randn(3, 8)),
    lambda: MultiHeadAttention(8, 2)(torch.randn(2, 3, 8), key_mask=torch.ones(2, 4, dtype=torch.bool)),
    lambda: MultiHeadAttention(8, 2).load_torch(nn.MultiheadAttention(8, 4)),
    lambda: padding_mask(torch.tensor([[1, 2]])),
    lambda: causal_mask(0),
])
def test_bad_input_raises_value_error(bad):
    with pytest.raises(ValueError):
        bad()


def test_sinusoidal_table_values():
    pe = sinusoidal_table(50, 16)
    assert pe.shape == (50, 16)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 8))
    assert float(pe[3, 0]) == pytest.approx(math.sin(3.0))
    assert float(pe[3, 3]) == pytest.approx(math.cos(3 / 10000 ** (2 / 16)))
    assert float(pe.abs().max()) <= 1.0


@pytest.mark.parametrize("cls", [SinusoidalPositionalEncoding, LearnedPositionalEncoding])
def test_positional_adds_table_and_checks_length(cls):
    torch.manual_seed(0)
    pos = cls(8, max_len=10)
    x = torch.zeros(2, 6, 8)
    y = pos(x)
    torch.testing.assert_close(y[0], pos.table()[:6])
    assert not torch.allclose(y[0, 0], y[0, 1])  # positions differ
    with pytest.raises(ValueError, match="longer than the positional table"):
        pos(torch.zeros(1, 11, 8))
    with pytest.raises(ValueError):
        pos(torch.zeros(1, 5, 6))  # wrong D
    with pytest.raises(ValueError):
        pos(torch.zeros(5, 8))  # wrong rank


def test_learned_positions_are_trained_parameters():
    assert sum(p.numel() for p in SinusoidalPositionalEncoding(8, 10).parameters()) == 0
    assert sum(p.numel() for p in LearnedPositionalEncoding(8, 10).parameters()) == 80
