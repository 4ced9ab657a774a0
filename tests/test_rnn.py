"""The written-out RNN / LSTM / GRU cells and layers equal torch's modules (copied weights)."""

import pytest
import torch
from torch import nn

from mmcourse.models.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, input_gradient_norms

ATOL = 1e-5


def _copy_cell(mine: nn.Module, ref: nn.Module) -> nn.Module:
    mine.load_state_dict(ref.state_dict())  # same parameter names and shapes as torch's cells
    return mine


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_equals_torch(nonlinearity):
    torch.manual_seed(0)
    ref = nn.RNNCell(5, 7, nonlinearity=nonlinearity)
    mine = _copy_cell(RNNCell(5, 7, nonlinearity=nonlinearity), ref)
    x, h = torch.randn(3, 5), torch.randn(3, 7)
    torch.testing.assert_close(mine(x, h), ref(x, h), atol=ATOL, rtol=0)
    torch.testing.assert_close(mine(x), ref(x), atol=ATOL, rtol=0)  # zero initial state


def test_lstm_cell_equals_torch():
    torch.manual_seed(0)
    ref = nn.LSTMCell(5, 7)
    mine = _copy_cell(LSTMCell(5, 7), ref)
    x, h, c = torch.randn(3, 5), torch.randn(3, 7), torch.randn(3, 7)
    for a, b in zip(mine(x, (h, c)), ref(x, (h, c)), strict=True):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_gru_cell_equals_torch():
    torch.manual_seed(0)
    ref = nn.GRUCell(5, 7)
    mine = _copy_cell(GRUCell(5, 7), ref)
    x, h = torch.randn(3, 5), torch.randn(3, 7)
    torch.testing.assert_close(mine(x, h), ref(x, h), atol=ATOL, rtol=0)


def test_cell_without_bias_equals_torch():
    torch.manual_seed(0)
    ref = nn.GRUCell(4, 6, bias=False)
    mine = _copy_cell(GRUCell(4, 6, bias=False), ref)
    x, h = torch.randn(2, 4), torch.randn(2, 6)
    torch.testing.assert_close(mine(x, h), ref(x, h), atol=ATOL, rtol=0)


LAYERS = [(RNN, nn.RNN), (LSTM, nn.LSTM), (GRU, nn.GRU)]
CONFIGS = [
    dict(),
    dict(num_layers=2),
    dict(num_layers=2, batch_first=True),
    dict(bidirectional=True),
    dict(num_layers=3, bidirectional=True, batch_first=True),
]


def _flat(state):
    return torch.cat(state) if isinstance(state, tuple) else state


@pytest.mark.parametrize("ours,theirs", LAYERS, ids=["rnn", "lstm", "gru"])
@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_layer_equals_torch(ours, theirs, kw):
    torch.manual_seed(1)
    ref = theirs(6, 8, **kw)
    mine = ours(6, 8, **kw).copy_from(ref)
    x = torch.randn(3, 9, 6) if kw.get("batch_first") else torch.randn(9, 3, 6)
    (out_r, s_r), (out_m, s_m) = ref(x), mine(x)
    assert out_m.shape == out_r.shape
    torch.testing.assert_close(out_m, out_r, atol=ATOL, rtol=0)
    torch.testing.assert_close(_flat(s_m), _flat(s_r), atol=ATOL, rtol=0)


@pytest.mark.parametrize("ours,theirs", LAYERS, ids=["rnn", "lstm", "gru"])
def test_layer_with_initial_state_and_gradients_equal_torch(ours, theirs):
    torch.manual_seed(2)
    ref = theirs(4, 5, num_layers=2, bidirectional=True)
    mine = ours(4, 5, num_layers=2, bidirectional=True).copy_from(ref)
    x = torch.randn(7, 2, 4)
    h0 = torch.randn(4, 2, 5)
    state = (h0, torch.randn(4, 2, 5)) if theirs is nn.LSTM else h0
    out_r, _ = ref(x, state)
    out_m, _ = mine(x, state)
    torch.testing.assert_close(out_m, out_r, atol=ATOL, rtol=0)
    out_r.pow(2).sum().backward()
    out_m.pow(2).sum().backward()
    grads_r = dict(ref.named_parameters())
    for k, cell in enumerate(mine.cells):
        suffix = f"_l{k // 2}" + ("_reverse" if k % 2 else "")
        for name, p in cell.named_parameters():
            torch.testing.assert_close(p.grad, grads_r[name + suffix].grad, atol=1e-4, rtol=1e-4)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    layer = LSTM(3, 4, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    layer.eval()
    a, _ = layer(x)
    b, _ = layer(x)
    torch.testing.assert_close(a, b)
    layer.train()
    c, _ = layer(x)
    assert not torch.allclose(a, c)


def test_seeded_reference_values():
    torch.manual_seed(0)
    layer = GRU(3, 4)
    out, h = layer(torch.ones(2, 1, 3))
    assert out.shape == (2, 1, 4) and h.shape == (1, 1, 4)
    torch.testing.assert_close(out[-1, 0], h[0, 0])  # the last output is the final state
    expected = torch.tensor([0.4499, -0.3646, -0.4951, -0.4664])
    torch.testing.assert_close(h[0, 0], expected, atol=1e-4, rtol=0)


def test_input_gradient_norms_vanish_and_explode():
    torch.manual_seed(0)
    x = torch.randn(40, 4, 3)
    tanh = RNNCell(3, 16)
    relu = RNNCell(3, 16, nonlinearity="relu")
    with torch.no_grad():
        relu.weight_hh.copy_(1.2 * torch.eye(16))
        relu.bias_ih.zero_()
        relu.bias_hh.zero_()
    n_tanh, n_relu = input_gradient_norms(tanh, x), input_gradient_norms(relu, x)
    assert n_tanh.shape == n_relu.shape == (40,)
    assert n_tanh[0] / n_tanh[-1] < 1e-4  # vanishing
    assert n_relu[0] / n_relu[-1] > 1e2  # exploding: about 1.2 ** 39 on the active units
    # The norms agree with autograd done by hand on the last input step.
    x1 = x.clone().requires_grad_(True)
    h = None
    for t in range(40):
        h = tanh(x1[t], h)
    h.sum().backward()
    torch.testing.assert_close(n_tanh[-1], x1.grad[-1].norm())


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="expected x"):
        LSTM(3, 4)(torch.randn(5, 3))  # rank 2
    with pytest.raises(ValueError, match="input features"):
        GRU(3, 4)(torch.randn(5, 2, 6))
    with pytest.raises(ValueError, match="initial state"):
        RNN(3, 4, num_layers=2)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="initial state"):
        LSTM(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))  # an LSTM needs (h, c)
    with pytest.raises(ValueError, match="expects x"):
        LSTMCell(3, 4)(torch.randn(2, 5))
    with pytest.raises(ValueError, match="state"):
        GRUCell(3, 4)(torch.randn(2, 3), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="differ"):
        LSTM(3, 4).copy_from(nn.LSTM(3, 5))
    with pytest.raises(ValueError, match="num_layers"):
        GRU(3, 4, num_layers=0)
