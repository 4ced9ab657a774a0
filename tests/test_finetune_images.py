"""Chapter 08's image side: what each strategy trains, the cached frozen part, the preprocessing,
bad input, the data subsets and the experiment cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmcourse import pretrained as P
from mmcourse.finetune import images as fi
from mmcourse.finetune.freeze import changed, snapshot

pytest.importorskip("peft")
needs_mobilenet = pytest.mark.skipif(not P.mobilenet_checkpoint().is_file(), reason="MobileNetV2 checkpoint not "
                                     "in $TORCH_HOME (copy shared/weights/*.pth to $TORCH_HOME/hub/checkpoints/)")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(6, 1, 28, 28)  # [B, 1, 28, 28] in [0, 1]


def _step(model, x, y, params, lr=0.1):
    opt = torch.optim.SGD(params, lr=lr)
    F.cross_entropy(model(x), y).backward()
    opt.step()


@needs_mobilenet
def test_preprocessing_is_the_weights_transform_and_chapter_07s(images):
    model = fi.build(size=64)
    got = model.prepare(images)  # [6, 3, 64, 64]
    from torchvision.models import MobileNet_V2_Weights

    want = MobileNet_V2_Weights.IMAGENET1K_V1.transforms(crop_size=64, resize_size=64)(images.repeat(1, 3, 1, 1))
    assert torch.equal(got, want)
    # by hand: bilinear antialiased resize, then ImageNet mean / std (chapter 07's encoder does the same)
    by_hand = F.interpolate(images.repeat(1, 3, 1, 1), size=(64, 64), mode="bilinear", antialias=True)
    by_hand = (by_hand - torch.tensor(P.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(P.IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(got, by_hand, atol=1e-5, rtol=0)
    torch.testing.assert_close(got, P.image_encoder(64)._prep(images.repeat(1, 3, 1, 1)), atol=1e-5, rtol=0)
    assert torch.equal(model.prepare(images), model.prepare(images.repeat(1, 3, 1, 1)))  # grey = its RGB copy


@needs_mobilenet
def test_pretrained_weights_loaded_and_scratch_is_random():
    pre, scratch = fi.build(pretrained=True), fi.build(pretrained=False)
    ref = P.image_encoder().model.features.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in pre.features.state_dict().items())
    assert not torch.equal(scratch.features[0][0].weight, ref["0.0.weight"])
    assert len(pre.features) == 19 and sum(p.numel() for p in pre.parameters()) == 2_236_682


@needs_mobilenet
def test_wrong_size_or_channels_names_the_argument_and_the_fix(images):
    model = fi.build(size=32).eval()
    with pytest.raises(ValueError, match=r"x has 4 channels.*x\[:, :3\]"):
        model(torch.rand(2, 4, 28, 28))
    with pytest.raises(ValueError, match=r"x has 2 channels.*expected 1 \(grey\) or 3"):
        model(torch.rand(2, 2, 28, 28))
    with pytest.raises(ValueError, match=r"x is 32x32 px.*interpolate\(x, size=\(28, 28\).*input_size=32"):
        model(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        model(torch.rand(1, 28, 28))
    with pytest.raises(ValueError, match=r"uint8.*float\(\) / 255"):
        model((images * 255).to(torch.uint8))
    assert model(images).shape == (6, 10)  # the right input works


@needs_mobilenet
def test_probe_step_leaves_the_frozen_backbone_bit_equal(images):
    model = fi.build(size=32)
    net, groups = fi.strategy(model, "probe", lr=0.1)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.1.weight", "head.1.bias"]
    feats = fi.encode(fi.Prefix(model, 0), images)  # [6, 1280, 1, 1]: the cached input of the probe
    head = fi.Suffix(model, 0)
    before = snapshot(model)
    buffers = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    _step(head.train(), feats, torch.arange(6) % 10, [p for g in groups for p in g["params"]])
    assert sorted(changed(model, before)) == ["head.1.bias", "head.1.weight"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())  # BatchNorm statistics too


@needs_mobilenet
@pytest.mark.parametrize("k", [1, 4])
def test_partial_unfreezes_exactly_the_last_k_blocks(k, images):
    model = fi.build(size=32)
    fi.strategy(model, "partial", lr=0.1, k=k)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    blocks = {int(n.split(".")[1]) for n in trainable if n.startswith("features.")}
    assert blocks == set(range(19 - k, 19))
    for i in range(19):  # a block trains entirely or not at all
        names = {n for n, _ in model.named_parameters() if n.startswith(f"features.{i}.")}
        assert names <= trainable if i >= 19 - k else not names & trainable
    # caching the frozen prefix is exact: suffix(prefix(x)) == model(x) in eval mode
    model.eval()
    h = fi.encode(fi.Prefix(model, k), images)
    torch.testing.assert_close(fi.Suffix(model, k).eval()(h), model(images), atol=1e-5, rtol=1e-5)
    # a step changes the last k blocks and the head only
    suffix = fi.Suffix(model, k).train()
    before = snapshot(model)
    _step(suffix, h, torch.arange(6) % 10, [p for p in suffix.parameters() if p.requires_grad])
    moved = changed(model, before)
    assert moved and all(n.startswith("head.") or int(n.split(".")[1]) >= 19 - k for n in moved)


@needs_mobilenet
def test_lora_trains_under_3_percent_and_starts_as_the_base_model(images):
    model = fi.build(size=32).eval()
    want = model(images)
    total = sum(p.numel() for p in model.parameters())
    assert len(fi.pointwise_convs(model)) == 34
    net, groups = fi.strategy(model, "lora", lr=0.1, r=2)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert all("lora_" in n or ".head." in n for n in trainable)
    n_train = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert n_train / total < 0.03 and n_train == sum(p.numel() for g in groups for p in g["params"])
    torch.testing.assert_close(net.eval()(images), want)  # B = 0 at the start
    before = snapshot(net)
    net.train()
    _step(net, images, torch.arange(6) % 10, [p for g in groups for p in g["params"]])
    assert all("lora_" in n or ".head." in n for n in changed(net, before))


@needs_mobilenet
def test_full_groups_give_the_backbone_a_smaller_rate():
    model = fi.build(size=32)
    _, groups = fi.strategy(model, "full", lr=1e-2, backbone_factor=0.3)
    assert [g["lr"] for g in groups] == [1e-2, pytest.approx(3e-3)]
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="strategy must be one of"):
        fi.strategy(model, "everything", lr=1e-2)


def test_augment_flips_and_shifts_only():
    x = torch.rand(8, 1, 28, 28)
    g = torch.Generator().manual_seed(0)
    out = fi.augment(x, g, shift=0)
    assert all(torch.equal(o, a) or torch.equal(o, a.flip(-1)) for o, a in zip(out, x, strict=True))
    out = fi.augment(torch.ones(4, 1, 28, 28), torch.Generator().manual_seed(1), shift=2)
    assert out.shape == (4, 1, 28, 28) and out.sum() >= 4 * 26 * 26  # a shift of at most 2 px
    a = list(fi.Batches(x, torch.arange(8), 3, augment=True, seed=5))
    b = list(fi.Batches(x, torch.arange(8), 3, augment=True, seed=5))
    assert len(a) == 3 and all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b, strict=True))


def test_data_subsets_are_nested_balanced_and_disjoint():
    from tests._helpers import shared_datasets

    shared_datasets()
    from mmcourse.finetune import sweep

    small, big = sweep.data(100), sweep.data(1000)
    assert torch.equal(small["train"][0], big["train"][0][:100])  # 100 inside 1,000
    assert torch.bincount(small["train"][1], minlength=10).tolist() == [10] * 10
    assert torch.bincount(big["train"][1], minlength=10).tolist() == [100] * 10
    split = sweep._split(500, 2000)
    assert not set(split["order"][:10_000].tolist()) & set(split["val"].tolist())
    assert len(big["val"][1]) == 500 and len(big["test"][1]) == 2000
    with pytest.raises(ValueError, match="multiple of 10"):
        sweep.data(105)


@needs_mobilenet
def test_run_is_cached_by_its_config(tmp_path, monkeypatch):
    from tests._helpers import shared_datasets

    shared_datasets()
    from mmcourse.finetune import sweep

    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    cfg = sweep.Config("probe", 20, size=32, epochs=2, val=50, test=50, augment=False)
    first = sweep.run(cfg)
    assert first["trainable"] == 12_810 and first["epochs_run"] == 2 and len(first["val_acc"]) == 2
    files = sorted((tmp_path / "finetune").glob("probe-20-*.pt"))
    assert len(files) == 1
    assert sweep.run(cfg) == first  # read back
    monkeypatch.setenv("MMCOURSE_SEED", "1")
    assert sweep.Config("probe", 20).key() != (monkeypatch.delenv("MMCOURSE_SEED") or sweep.Config("probe", 20).key())


@needs_mobilenet
def test_imagenet_kept_is_one_for_the_original_and_falls_when_scrambled():
    from mmcourse.finetune import sweep

    model = fi.build(size=64)
    assert sweep.imagenet_kept(model) == 1.0
    with torch.no_grad():  # BatchNorm statistics re-estimated on other data: set back, so nothing is lost
        for m in model.features.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.add_(1.0)
                m.running_var.mul_(3.0)
    assert sweep.imagenet_kept(model) == 1.0
    before = model.features[-1][1].running_mean.clone()
    with torch.no_grad():
        for p in model.features[-3:].parameters():
            p.add_(torch.randn_like(p) * p.std())
    assert sweep.imagenet_kept(model) < 0.9  # weights moved: knowledge lost
    assert torch.equal(model.features[-1][1].running_mean, before)  # measured on a copy
