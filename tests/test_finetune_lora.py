"""LoRA through peft and the freezing helpers: which parameters a step changes, and merging."""

import copy

import pytest
import torch
from torch import nn

from mmcourse.finetune.freeze import (
    changed,
    freeze,
    param_groups,
    snapshot,
    trainable_fraction,
    unfreeze_last,
)
from mmcourse.finetune.lora import add_lora, lora_parameters, merge

pytest.importorskip("peft")


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.query = nn.Linear(8, 8)
        self.value = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):  # [B, 3, H, W] -> [B, 4]
        h = self.conv(x).mean((2, 3))  # [B, 8]
        return self.head(self.value(torch.relu(self.query(h))))


def _step(model, x, y, lr=0.1):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def test_lora_step_changes_only_adapters_and_head():
    torch.manual_seed(0)
    model = add_lora(Tiny(), ["query", "value", "conv"], r=2, train=["head"])
    x, y = torch.randn(6, 3, 5, 5), torch.tensor([0, 1, 2, 3, 0, 1])
    _step(model, x, y)  # B starts at zero: the first step moves B only (A's gradient is 0)
    before = snapshot(model)
    _step(model, x, y)
    moved = changed(model, before)
    assert moved, "a step must change something"
    assert all("lora_" in n or "head" in n for n in moved), moved
    # the frozen base weights are bit-equal
    for n, p in model.named_parameters():
        if "base_layer" in n:
            assert not p.requires_grad and torch.equal(p, before[n])
    assert set(lora_parameters(model)) <= {n for n, p in model.named_parameters() if p.requires_grad}


def test_lora_starts_as_the_base_model_and_merges_to_same_outputs():
    torch.manual_seed(0)
    base = Tiny()
    x = torch.randn(4, 3, 5, 5)
    want = base(x)
    model = add_lora(copy.deepcopy(base), ["query", "value"], r=4, alpha=8)
    torch.testing.assert_close(model(x), want)  # B = 0: unchanged at the start
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    adapted = model(x)
    assert not torch.allclose(adapted, want)
    merged = merge(model)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(merged(x), adapted, rtol=1e-5, atol=1e-5)
    # by hand: W + (alpha / r) B A
    lora = add_lora(copy.deepcopy(base), ["query"], r=2, alpha=6)
    layer = lora.base_model.model.query
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_()
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight  # [r, in], [out, r]
    w = base.query.weight + (6 / 2) * b @ a
    h = torch.randn(3, 8)
    torch.testing.assert_close(layer(h), h @ w.T + base.query.bias)


def test_lora_bad_targets_name_the_modules():
    with pytest.raises(ValueError, match="named_modules"):
        add_lora(Tiny(), ["attention.nothing"])
    with pytest.raises(ValueError, match="rank"):
        add_lora(Tiny(), ["query"], r=0)


def test_freeze_unfreeze_and_param_groups():
    model = Tiny()
    freeze(model)
    assert trainable_fraction(model) == 0
    blocks = [model.conv, model.query, model.value]
    unfreeze_last(blocks, 1)
    model.head.requires_grad_(True)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "value.weight", "value.bias", "head.weight", "head.bias"]
    groups = param_groups(model, model.head, lr=1e-2, backbone_factor=0.1)
    assert [g["lr"] for g in groups] == [1e-2, pytest.approx(1e-3)]
    assert sum(p.numel() for g in groups for p in g["params"]) == 8 * 8 + 8 + 8 * 4 + 4
    with pytest.raises(ValueError, match="between 0 and 3"):
        unfreeze_last(blocks, 4)
