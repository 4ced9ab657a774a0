"""Fusion strategies: each against an independent computation (torch's own ops), seeded
reference values, gradients into every encoder, and clear errors on bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmcourse.fusion import (
    AttentionFusion,
    ConcatFusion,
    CrossModalTransformer,
    EarlyFusion,
    GatedMultimodalUnit,
    HybridFusion,
    LateFusion,
    LowRankTensorFusion,
    MultimodalModel,
    TensorFusion,
    low_rank_params,
    tensor_fusion_params,
)
from mmcourse.fusion.model import drop_modalities
from mmcourse.fusion.zoo import FUSION, UNIMODAL, build
from mmcourse.models import count_parameters
from mmcourse.models.encoders import AudioEncoder, ImageEncoder, TextEncoder

DIMS = {"image": 6, "audio": 4}


def feats(b: int = 3, seed: int = 1, dims=DIMS) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, d, generator=g) for m, d in dims.items()}


def raw_batch(b: int = 4, seed: int = 2, text: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = {"image": torch.randn(b, 1, 28, 28, generator=g), "audio": torch.randn(b, 40, 101, generator=g)}
    if text:
        x["text"] = torch.randint(0, 27, (b, 5), generator=g)
    return x


# --- each strategy equals an independent computation -------------------------------------


def test_concat_is_torch_cat():
    f = ConcatFusion(DIMS)
    x = feats()
    assert f.out_dim == 10
    assert torch.equal(f(x), torch.cat([x["image"], x["audio"]], -1))


def test_early_fusion_stacks_resized_maps_as_channels():
    torch.manual_seed(0)
    f = EarlyFusion(["image", "audio"], ImageEncoder(2, 8))
    x = raw_batch()
    stacked = f.stack(x)
    assert stacked.shape == (4, 2, 28, 28)
    assert torch.equal(stacked[:, 0], x["image"][:, 0])  # already 28x28: unchanged
    want = F.interpolate(x["audio"].unsqueeze(1), size=(28, 28), mode="bilinear", align_corners=False)
    assert torch.allclose(stacked[:, 1:], want)
    assert torch.allclose(f(x), f.backbone(stacked))
    assert f(x).shape == (4, 8)


@pytest.mark.parametrize("combine", ["mean", "learned", "poe"])
def test_late_fusion_combines_unimodal_logits(combine):
    torch.manual_seed(0)
    f = LateFusion(DIMS, 5, combine)
    with torch.no_grad():
        f.weight_logits.copy_(torch.tensor([0.3, -0.2]))
    x = feats()
    s = {m: f.heads[m](x[m]) for m in DIMS}
    if combine == "poe":  # a normalised product of the experts' distributions
        p = F.softmax(s["image"], -1) * F.softmax(s["audio"], -1)
        assert torch.allclose(F.softmax(f(x), -1), p / p.sum(-1, keepdim=True), atol=1e-6)
    else:
        w = torch.softmax(torch.tensor([0.3, -0.2]), 0) if combine == "learned" else torch.tensor([0.5, 0.5])
        assert torch.allclose(f(x), w[0] * s["image"] + w[1] * s["audio"], atol=1e-6)
    # masking policy: a missing modality leaves the others' decision
    only = f({"audio": x["audio"]})
    assert torch.allclose(only, F.log_softmax(s["audio"], -1) if combine == "poe" else s["audio"], atol=1e-6)


def test_tensor_fusion_is_linear_in_the_kronecker_product():
    torch.manual_seed(0)
    f = TensorFusion(DIMS, 3)
    x = feats()
    one = torch.ones(3, 1)
    z = torch.stack([torch.kron(torch.cat([x["image"], one], 1)[i], torch.cat([x["audio"], one], 1)[i])
                     for i in range(3)])  # [B, 7 * 5]
    assert f.fused_size == 35 and torch.allclose(f.outer(x), z)
    assert torch.allclose(f(x), F.linear(z, f.linear.weight, f.linear.bias), atol=1e-6)
    # the appended 1 keeps every unimodal term: z holds h_image and h_audio themselves
    assert torch.allclose(z.view(3, 7, 5)[:, :6, 4], x["image"]) and torch.allclose(z.view(3, 7, 5)[:, 6, :4], x["audio"])


@pytest.mark.parametrize("dims", [DIMS, {"image": 3, "audio": 2, "text": 4}])
def test_low_rank_equals_tensor_fusion_with_its_full_weight(dims):
    torch.manual_seed(0)
    lr = LowRankTensorFusion(dims, 5, rank=3)
    tf = TensorFusion(dims, 5)
    with torch.no_grad():
        tf.linear.weight.copy_(lr.full_weight())
        tf.linear.bias.copy_(lr.bias)
    x = feats(dims=dims)
    assert torch.allclose(lr(x), tf(x), atol=1e-5)


def test_parameter_counts_grow_exponentially_vs_linearly():
    for dims in ([4, 6], [4, 6, 3]):
        named = {f"m{i}": d for i, d in enumerate(dims)}
        assert count_parameters(TensorFusion(named, 8)) == tensor_fusion_params(dims, 8)
        assert count_parameters(LowRankTensorFusion(named, 8, 4)) == low_rank_params(dims, 8, 4)
    assert tensor_fusion_params([32] * 3, 32) == 33**3 * 32 + 32
    ratios = [tensor_fusion_params([32] * m, 32) / tensor_fusion_params([32] * (m - 1), 32) for m in (3, 4, 5)]
    assert all(abs(r - 33) < 0.1 for r in ratios)  # x33 per modality
    assert low_rank_params([32] * 5, 32, 4) - low_rank_params([32] * 4, 32, 4) == 4 * 33 * 32


def test_gmu_two_modalities_is_the_sigmoid_gate():
    torch.manual_seed(0)
    f = GatedMultimodalUnit(DIMS, 3)
    x = feats()
    y, g = f(x, return_gates=True)
    c1, c2 = torch.tanh(f.candidates["image"](x["image"])), torch.tanh(f.candidates["audio"](x["audio"]))
    logits = f.gate(torch.cat([x["image"], x["audio"]], -1)).view(3, 2, 3)
    z = torch.sigmoid(logits[:, 0] - logits[:, 1])
    assert torch.allclose(y, z * c1 + (1 - z) * c2, atol=1e-6)
    assert torch.allclose(g.sum(1), torch.ones(3, 3))


def test_attention_fusion_matches_the_softmax_by_hand_and_masks_missing():
    torch.manual_seed(0)
    f = AttentionFusion(DIMS, dim=8, heads=1)
    x = feats()
    y, a = f(x, return_weights=True)
    k = torch.stack([F.layer_norm(f.proj[m](x[m]), (8,)) for m in DIMS], 1) + f.modality_emb  # [B, M, 8]
    wq, wk, wv = f.attn.in_proj_weight.chunk(3)
    bq, bk, bv = f.attn.in_proj_bias.chunk(3)
    q = f.query[0, 0] @ wq.T + bq  # [8]
    scores = torch.einsum("d,bmd->bm", q, k @ wk.T + bk) / 8**0.5
    want_a = torch.softmax(scores, -1)
    want_y = torch.einsum("bm,bmd->bd", want_a, k @ wv.T + bv) @ f.attn.out_proj.weight.T + f.attn.out_proj.bias
    assert torch.allclose(a, want_a, atol=1e-6) and torch.allclose(y, want_y, atol=1e-5)
    y1, a1 = f({"image": x["image"]}, return_weights=True)
    assert torch.allclose(a1, torch.tensor([[1.0, 0.0]] * 3))  # all weight on the one present
    assert y1.shape == (3, 8)


def test_cross_transformer_attends_across_and_ignores_context_order():
    torch.manual_seed(0)
    f = CrossModalTransformer({"image": 6, "audio": 4}, dim=8, heads=2).eval()
    g = torch.Generator().manual_seed(3)
    x = {"image": torch.randn(2, 5, 6, generator=g), "audio": torch.randn(2, 7, 4, generator=g)}
    y, att = f(x, return_attention=True)
    assert y.shape == (2, 16)
    assert att["image"].shape == (2, 5, 7) and att["audio"].shape == (2, 7, 5)  # each asks the other
    assert torch.allclose(att["image"].sum(-1), torch.ones(2, 5))
    # attention is a weighted sum: shuffling the audio tokens leaves the image half unchanged
    perm = torch.randperm(7, generator=g)
    y2 = f({"image": x["image"], "audio": x["audio"][:, perm]})
    assert torch.allclose(y[:, :8], y2[:, :8], atol=1e-5)
    # ... but changing the audio changes it: the image tokens do read the audio
    y3 = f({"image": x["image"], "audio": x["audio"] + 1})
    assert not torch.allclose(y[:, :8], y3[:, :8], atol=1e-3)


@pytest.mark.parametrize("norm, readout", [("pre", "summary"), ("post", "mean")])
def test_cross_transformer_block_by_hand(norm, readout):
    torch.manual_seed(0)
    f = CrossModalTransformer({"image": 6, "audio": 4}, dim=8, heads=2, norm=norm, readout=readout).eval()
    g = torch.Generator().manual_seed(4)
    x = {"image": torch.randn(3, 5, 6, generator=g), "audio": torch.randn(3, 7, 4, generator=g)}
    t = {m: f.proj[m](x[m]) for m in x}
    ys = []
    for m, o in (("image", "audio"), ("audio", "image")):
        blk = f.blocks[m]
        if norm == "pre":  # a + MHA(LN a, LN o, LN o), then + FFN(LN .); LN of token 0
            c = F.layer_norm(t[o], (8,))
            h = t[m] + blk.attn(F.layer_norm(t[m], (8,)), c, c)[0]
            h = h + blk.ff(F.layer_norm(h, (8,)))
            ys.append(F.layer_norm(h[:, 0], (8,)))
        else:  # LN(a + MHA(a, o, o)), LN(. + FFN(.)); mean of the local tokens
            h = F.layer_norm(t[m] + blk.attn(t[m], t[o], t[o])[0], (8,))
            h = F.layer_norm(h + blk.ff(h), (8,))
            ys.append(h[:, 1:].mean(1))
    assert torch.allclose(f(x), torch.cat(ys, -1), atol=1e-5)
    with pytest.raises(ValueError, match="readout"):
        CrossModalTransformer({"image": 6, "audio": 4}, readout="max")
    with pytest.raises(ValueError, match="norm"):
        CrossModalTransformer({"image": 6, "audio": 4}, norm="mid")


def test_hybrid_is_a_weighted_sum_of_joint_and_unimodal_logits():
    torch.manual_seed(0)
    f = HybridFusion(DIMS, 4, hidden=5)
    x = feats()
    w = f.weights()
    want = w[0] * f.joint(torch.cat([x["image"], x["audio"]], -1))
    want = want + w[1] * f.heads["image"](x["image"]) + w[2] * f.heads["audio"](x["audio"])
    assert torch.allclose(f(x), want, atol=1e-6) and torch.isclose(w.sum(), torch.tensor(1.0))


# --- every method of the chapter: shape, seeded reference, gradients, errors --------------

# sum of logits for raw_batch() after torch.manual_seed(0); build(method) (torch 2.11, CPU)
REFERENCE = {
    "image only": 0.84507, "audio only": 1.69971, "early": -1.60177, "concat": -0.13581,
    "late mean": 0.21405, "late learned": 0.21405, "late PoE": -184.65604, "tensor": 0.99747,
    "low-rank tensor": 0.16429, "GMU": -1.73375, "attention": -1.98907, "cross transformer": -6.93051,
    "hybrid": -0.16872,
}  # fmt: skip


@pytest.mark.parametrize("method", UNIMODAL + FUSION)
def test_method_shape_reference_and_gradients(method):
    torch.manual_seed(0)
    model = build(method)
    x = raw_batch()
    out = model(x)
    assert out.shape == (4, 10)
    assert float(out.detach().sum()) == pytest.approx(REFERENCE[method], abs=1e-4)
    F.cross_entropy(out, torch.arange(4)).backward()
    parts = dict(model.encoders) or {"joint": model.fusion.backbone}
    for name, enc in parts.items():
        grads = [p.grad for p in enc.trunk.parameters()]
        assert all(gr is not None and gr.abs().sum() > 0 for gr in grads), f"{method}: no gradient into {name}"


@pytest.mark.parametrize("method", FUSION)
def test_method_errors_on_missing_keys_and_batch_mismatch(method):
    torch.manual_seed(0)
    model = build(method)
    x = raw_batch()
    with pytest.raises(ValueError, match="batch sizes differ"):
        model({"image": x["image"], "audio": x["audio"][:3]})
    if model.fusion.supports_missing:  # documented masking policy: combine what is present
        assert model({"audio": x["audio"]}).shape == (4, 10)
    else:
        with pytest.raises(ValueError, match="missing modalities"):
            model({"audio": x["audio"]})
    with pytest.raises(ValueError, match="dict"):
        model(x["image"])


def test_three_modalities_with_text():
    torch.manual_seed(0)
    for method in ("concat", "tensor", "low-rank tensor", "cross transformer"):
        model = build(method, modalities=("image", "audio", "text"))
        out = model(raw_batch(text=True))
        assert out.shape == (4, 10)
        out.sum().backward()
        assert model.encoders["text"].emb.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="text"):
        build("early", modalities=("image", "audio", "text"))


def test_fusion_modules_reject_wrong_shapes():
    x = feats()
    with pytest.raises(ValueError, match="d=6"):
        ConcatFusion(DIMS)({"image": x["image"][:, :5], "audio": x["audio"]})
    with pytest.raises(ValueError, match="missing"):
        TensorFusion(DIMS, 3)({"image": x["image"]})
    with pytest.raises(ValueError, match=r"\[B, N, d\]"):
        CrossModalTransformer(DIMS, 8)(x)
    with pytest.raises(ValueError, match="missing"):
        EarlyFusion(["image", "audio"], ImageEncoder(2, 8))({"image": torch.zeros(2, 1, 28, 28)})
    with pytest.raises(ValueError, match="combine"):
        LateFusion(DIMS, 3, "max")
    with pytest.raises(ValueError, match="not modalities"):
        MultimodalModel({"video": ImageEncoder()}, ConcatFusion(DIMS), torch.nn.Identity())


def test_encoders_shapes_and_errors():
    torch.manual_seed(0)
    x = raw_batch(text=True)
    img, aud, txt = ImageEncoder(1, 16), AudioEncoder(40, 16), TextEncoder(dim=16)
    assert img(x["image"]).shape == (4, 16) and img.tokens(x["image"]).shape == (4, 1 + 49, 16)
    assert aud(x["audio"]).shape == (4, 16) and aud.tokens(x["audio"]).shape == (4, 1 + 26, 16)
    assert txt(x["text"]).shape == (4, 16) and txt.tokens(x["text"]).shape == (4, 1 + 5, 16)
    for enc, v in ((img, x["image"]), (aud, x["audio"]), (txt, x["text"])):  # token 0: the summary embedding
        assert torch.allclose(enc.tokens(v)[:, 0], enc(v), atol=1e-6)
    with pytest.raises(ValueError, match="28, 28"):
        img(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="40 Mel"):
        aud(torch.zeros(2, 64, 101))
    with pytest.raises(ValueError, match="int ids"):
        txt(torch.zeros(2, 5))


def test_modality_dropout_never_drops_everything_and_is_off_in_eval():
    g = torch.Generator().manual_seed(0)
    b = {"image": torch.ones(2000, 3), "audio": torch.ones(2000, 2)}
    out = drop_modalities(b, 0.5, g)
    kept_i, kept_a = out["image"][:, 0] > 0, out["audio"][:, 0] > 0
    assert bool((kept_i | kept_a).all())
    assert 0.25 < float((~kept_i).float().mean()) < 0.45  # p - p^2 / 2 = 0.375 expected
    torch.manual_seed(0)
    model = build("concat", modality_dropout=0.5).eval()
    x = raw_batch()
    assert torch.equal(model(x), model(x))  # eval: deterministic, nothing dropped


def test_fusion_levels_diagram_text_is_legible_and_inside_its_boxes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mmcourse.viz.fusion import draw_fusion_levels

    fig = Figure(figsize=(9, 4.4), dpi=72)  # as the chapter stores it
    canvas = FigureCanvasAgg(fig)
    boxes = draw_fusion_levels(fig)
    canvas.draw()
    r = canvas.get_renderer()
    assert len(boxes) == 5 + 6 + 7 + 8  # early, feature, late, hybrid
    ext = {id(b): b.get_bbox_patch().get_window_extent(r) for b in boxes}
    for b in boxes:
        assert b.get_fontsize() * fig.dpi / 72 >= 8  # >= 8 px as stored
        box, text, panel = ext[id(b)], b.get_window_extent(r), b.axes.get_window_extent(r)
        assert box.x0 <= text.x0 and text.x1 <= box.x1 and box.y0 <= text.y0 and text.y1 <= box.y1, b.get_text()
        assert panel.x0 <= box.x0 and box.x1 <= panel.x1 and panel.y0 <= box.y0 and box.y1 <= panel.y1, b.get_text()
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a.axes is not b.axes or not ext[id(a)].overlaps(ext[id(b)]), (a.get_text(), b.get_text())
