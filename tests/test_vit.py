"""The Vision Transformer: patches, shapes, attention maps, a quick real-data fit, and its widget."""

import pytest
import torch

from mmcourse.data import mnist_pool
from mmcourse.models.vit import PatchEmbedding, ViT, attention_rollout, cls_attention
from mmcourse.viz.attention import vit_attention_panel

REF_VIT_LOGIT = -0.059222  # torch.manual_seed(0), torch 2.11 CPU


def test_patch_embedding_is_a_linear_map_of_each_patch():
    torch.manual_seed(0)
    pe = PatchEmbedding(8, 4, 1, 5)
    x = torch.randn(2, 1, 8, 8)
    t = pe(x)
    assert t.shape == (2, 4, 5)
    # patch 1 is the top-right 4x4 block, flattened, times the conv weight
    patch = x[0, 0, :4, 4:].reshape(-1)
    manual = pe.proj.weight.view(5, -1) @ patch + pe.proj.bias
    torch.testing.assert_close(t[0, 1], manual)


def test_vit_shapes_attention_and_seeded_value():
    torch.manual_seed(0)
    vit = ViT(image_size=28, patch_size=7, d_model=32, depth=2, n_heads=4, d_ff=64).eval()
    x = torch.linspace(0, 1, 3 * 28 * 28).view(3, 1, 28, 28)
    with torch.no_grad():
        logits, att = vit(x, return_attention=True)
    assert logits.shape == (3, 10) and len(att) == 2 and att[0].shape == (3, 4, 17, 17)
    torch.testing.assert_close(att[1].sum(-1), torch.ones(3, 4, 17))
    torch.testing.assert_close(logits, vit(x))
    assert float(logits[1, 3]) == pytest.approx(REF_VIT_LOGIT, abs=1e-4)
    cls = cls_attention(att[0], grid=4)
    assert cls.shape == (3, 4, 4) and float(cls.sum(dim=(1, 2)).max()) <= 1.0 + 1e-6
    roll = attention_rollout(att, grid=4)
    assert roll.shape == (3, 4, 4) and float(roll.min()) >= 0.0


def test_rollout_of_uniform_attention_is_uniform():
    att = [torch.full((1, 2, 5, 5), 0.2)] * 3
    roll = attention_rollout(att, grid=2)
    torch.testing.assert_close(roll, torch.full((1, 2, 2), roll[0, 0, 0].item()))


@pytest.mark.parametrize("shape", [(2, 28, 28), (2, 3, 28, 28), (2, 1, 32, 32)])
def test_vit_rejects_bad_images(shape):
    with pytest.raises(ValueError, match="expected images"):
        ViT(patch_size=7, d_model=16, depth=1, n_heads=2, d_ff=16)(torch.zeros(shape))


def test_bad_config_raises():
    with pytest.raises(ValueError):
        ViT(image_size=28, patch_size=5)
    with pytest.raises(ValueError):
        cls_attention(torch.ones(1, 2, 10, 10), grid=4)
    with pytest.raises(ValueError):
        attention_rollout([], grid=4)


def test_vit_learns_mnist_quickly():
    """1,500 real MNIST images, three epochs: far above chance (10%)."""
    from mmcourse.train import evaluate, fit, loaders

    torch.manual_seed(0)
    train, val = mnist_pool("train").subset(1500), mnist_pool("val").subset(300)
    tr, va = loaders(train, val, batch_size=64)
    vit = ViT(patch_size=7, d_model=32, depth=1, n_heads=2, d_ff=64, dropout=0.0)
    fit(vit, tr, va, epochs=3, lr=3e-3, progress=False)
    assert evaluate(vit, va)["accuracy"] > 0.4  # 0.57 with this seed


def test_vit_attention_panel_redraws():
    torch.manual_seed(0)
    vit = ViT(patch_size=7, d_model=16, depth=2, n_heads=2, d_ff=16).eval()
    images = mnist_pool("test").x[:3]
    with torch.no_grad():
        _, att = vit(images, return_attention=True)
    panel = vit_attention_panel(images, att, grid=4, titles=["a", "b", "c"])
    png0 = panel.image.value
    assert png0[:4] == b"\x89PNG"
    png1 = panel.set(example=2)
    assert png1 != png0 and panel.caption.value == "c"
    png2 = panel.set(layer=0, head=1)
    assert png2 != png1 and panel.draws == 3
    with pytest.raises(ValueError):
        vit_attention_panel(images[:2], att, grid=4)
