"""InfoNCE against a hand computation and finite differences; recall@k against a brute-force count."""

from __future__ import annotations

import math

import pytest
import torch

from mmcourse.contrastive import (
    ContrastiveModel,
    classify,
    contrastive_batches,
    contrastive_loss,
    info_nce,
    prototypes,
    recall_at_k,
    same_label_mask,
    similarity,
)
from mmcourse.data import DictBatches
from mmcourse.train import fit


def _hand_info_nce(u, v, tau, mask=None):
    """Symmetric InfoNCE written out with Python loops and math.log/exp (no torch ops on batches)."""
    b = len(u)
    un = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in u.tolist()]
    vn = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in v.tolist()]
    s = [[sum(a * c for a, c in zip(un[i], vn[j], strict=True)) / tau for j in range(b)] for i in range(b)]
    keep = [[not (mask is not None and bool(mask[i, j])) for j in range(b)] for i in range(b)]
    rows = [-s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(b) if keep[i][j])) for i in range(b)]
    cols = [-s[j][j] + math.log(sum(math.exp(s[i][j]) for i in range(b) if keep[i][j])) for j in range(b)]
    return (sum(rows) / b + sum(cols) / b) / 2


def test_info_nce_equals_hand_computation():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64)
    assert float(info_nce(u, v, 0.5)) == pytest.approx(_hand_info_nce(u, v, 0.5), abs=1e-12)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 2] = mask[2, 0] = True
    got = float(info_nce(u, v, 0.5, mask))
    assert got == pytest.approx(_hand_info_nce(u, v, 0.5, mask), abs=1e-12)
    assert got != pytest.approx(float(info_nce(u, v, 0.5)), abs=1e-6)  # the mask changes the loss


def test_info_nce_known_values():
    # perfectly aligned orthogonal pairs at a tiny temperature: loss -> 0; identical rows: log B
    eye = torch.eye(3, dtype=torch.float64)
    assert float(info_nce(eye, eye, 0.01)) == pytest.approx(0.0, abs=1e-30)
    ones = torch.ones(5, 2, dtype=torch.float64)
    assert float(info_nce(ones, ones, 0.1)) == pytest.approx(math.log(5), abs=1e-12)


def test_info_nce_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    u = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    mask = same_label_mask(torch.tensor([0, 1, 0, 2, 1]))
    info_nce(u, v, tau, mask).backward()
    eps = 1e-6
    for tensor in (u, v, tau):
        flat = tensor.detach().clone().reshape(-1)
        num = torch.zeros_like(flat)
        for k in range(len(flat)):
            for sign in (1, -1):
                x = flat.clone()
                x[k] += sign * eps
                args = {"u": u.detach(), "v": v.detach(), "tau": tau.detach()}
                name = "u" if tensor is u else "v" if tensor is v else "tau"
                args[name] = x.reshape(tensor.shape)
                num[k] += sign * float(info_nce(args["u"], args["v"], args["tau"], mask)) / (2 * eps)
        assert torch.allclose(tensor.grad.reshape(-1), num, atol=1e-7), tensor.shape
    assert torch.autograd.gradcheck(lambda a, b: info_nce(a, b, 0.3, mask), (u.detach().requires_grad_(),
                                                                               v.detach().requires_grad_()))


def test_info_nce_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        info_nce(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="diagonal"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), mask=torch.eye(3, dtype=torch.bool))


def _brute_recall(sim, k, ql=None, il=None):
    hits = 0
    for i in range(sim.shape[0]):
        order = sorted(range(sim.shape[1]), key=lambda j: (-float(sim[i, j]), j))[:k]
        hits += any((j == i) if ql is None else (int(il[j]) == int(ql[i])) for j in order)
    return hits / sim.shape[0]


def test_recall_at_k_matches_brute_force():
    g = torch.Generator().manual_seed(2)
    sim = torch.randn(40, 50, generator=g)
    ql, il = torch.randint(0, 4, (40,), generator=g), torch.randint(0, 4, (50,), generator=g)
    inst = recall_at_k(sim, (1, 5, 10))
    cls = recall_at_k(sim, (1, 5, 10), ql, il)
    for k in (1, 5, 10):
        assert inst[k] == pytest.approx(_brute_recall(sim, k))
        assert cls[k] == pytest.approx(_brute_recall(sim, k, ql, il))
    assert 0 < inst[1] < inst[10] < 1 and cls[1] < cls[5]  # monotone, and not trivial
    assert recall_at_k(torch.eye(6) * 2 + 0.1 * sim[:6, :6], (1,))[1] == 1.0


def test_prototypes_and_classify():
    emb = torch.tensor([[1.0, 0.0], [3.0, 0.2], [0.0, 1.0], [0.1, 2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    p = prototypes(emb, labels)
    assert torch.allclose(p[0], torch.nn.functional.normalize(torch.tensor([2.0, 0.1]), dim=0))
    assert torch.allclose(p.norm(dim=1), torch.ones(2))
    assert classify(torch.tensor([[5.0, 1.0], [-0.2, 3.0]]), p).tolist() == [0, 1]
    with pytest.raises(ValueError, match="no examples"):
        prototypes(emb, labels, num_classes=3)


def test_contrastive_loss_is_info_nce_on_logits():
    g = torch.Generator().manual_seed(4)
    u, v = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)
    groups = torch.tensor([3, 1, 3, 0, 1, 2])
    want = info_nce(u, v, 0.2, same_label_mask(groups))
    assert float(contrastive_loss(similarity(u, v) / 0.2, groups[:, None])) == pytest.approx(float(want), abs=1e-12)
    assert float(contrastive_loss(similarity(u, v) / 0.2, torch.arange(6))) == pytest.approx(
        float(info_nce(u, v, 0.2)), abs=1e-12)  # distinct groups: nothing masked


def test_contrastive_batches_are_group_columns_and_give_no_accuracy():
    x = {"a": torch.arange(10.0)[:, None], "b": -torch.arange(10.0)[:, None]}
    groups = torch.tensor([0, 1, 0, 2, 1, 3, 3, 4, 5, 6])
    plain = DictBatches(x, groups[:, None], 4, shuffle=True, seed=3)
    for (xa, ya), (xb, yb) in zip(contrastive_batches(x, groups, 4, shuffle=True, seed=3), plain, strict=True):
        assert torch.equal(ya, yb) and ya.shape == (len(ya), 1) and all(torch.equal(xa[k], xb[k]) for k in x)
    (_, y0), = contrastive_batches(x, batch_size=10)  # no groups: every pair its own
    assert y0.flatten().tolist() == list(range(10))
    model = ContrastiveModel({"a": torch.nn.Identity(), "b": torch.nn.Identity()}, {"a": 1, "b": 1}, dim=2)
    cpu = torch.device("cpu")
    hist = fit(model, contrastive_batches(x, groups, 5), epochs=1, lr=0.0, loss_fn=contrastive_loss,
               monitor="val_loss", progress=False, device=cpu)
    assert hist["train_loss"][0] > 0 and not hist["train_acc"]  # [B, B] logits vs group ids: no accuracy
    hist = fit(model, DictBatches(x, torch.arange(10), 5), epochs=1, lr=0.0, loss_fn=contrastive_loss,
               monitor="val_loss", progress=False, device=cpu)
    assert hist["train_acc"]  # what labels [N] would give: a meaningless "accuracy"
    with pytest.raises(ValueError, match=r"groups must be \[N\]"):
        contrastive_batches(x, groups[:, None])


def test_contrastive_model_learns_to_pair_with_fit():
    # two random linear "views" of the same latent: fit() with contrastive_loss aligns them
    g = torch.Generator().manual_seed(3)
    z = torch.randn(256, 8, generator=g)
    a, b = z @ torch.randn(8, 16, generator=g), z @ torch.randn(8, 12, generator=g)
    torch.manual_seed(0)
    model = ContrastiveModel({"a": torch.nn.Identity(), "b": torch.nn.Identity()}, {"a": 16, "b": 12}, dim=8)
    assert tuple(model({"a": a[:5], "b": b[:5]}).shape) == (5, 5)
    before = recall_at_k(similarity(model.embed_all("a", a), model.embed_all("b", b)), (1,))[1]
    loader = contrastive_batches({"a": a, "b": b}, batch_size=64, shuffle=True)
    fit(model, loader, epochs=40, lr=1e-2, loss_fn=contrastive_loss, monitor="val_loss", progress=False,
        device=torch.device("cpu"))
    after = recall_at_k(similarity(model.embed_all("a", a), model.embed_all("b", b)), (1,))[1]
    assert before < 0.1 and after > 0.9
    assert float(model.temperature) < 0.07  # the learned temperature sharpened
    fixed = ContrastiveModel({"a": torch.nn.Identity(), "b": torch.nn.Identity()}, {"a": 16, "b": 12},
                             learn_temperature=False)
    assert "logit_scale" not in dict(fixed.named_parameters())
    with pytest.raises(ValueError, match="missing modalities"):
        model({"a": a})
