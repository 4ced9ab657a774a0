"""CNN classifiers: shapes, seeded reference outputs, feature maps, bad input, a real fit, the widget."""

import pytest
import torch
from torch import nn

from mmcourse.models import count_parameters
from mmcourse.models.cnn import LeNet, ResidualBlock, ResidualCNN, SpectrogramCNN
from mmcourse.viz.features import feature_map_panel, plot_filters

# (factory, input shape, output shape, feature-map shapes)
CASES = {
    "lenet": (lambda: LeNet(), (2, 1, 28, 28), (2, 10),
              {"conv1": (16, 28, 28), "pool1": (16, 14, 14), "conv2": (32, 14, 14), "pool2": (32, 7, 7)}),
    "resnet": (lambda: ResidualCNN(), (2, 1, 28, 28), (2, 10),
               {"stem": (16, 14, 14), "stage1": (16, 14, 14), "stage2": (32, 7, 7), "stage3": (64, 4, 4)}),
    "lenet_rgb": (lambda: LeNet(in_channels=3, num_classes=5, image_size=32), (2, 3, 32, 32), (2, 5),
                  {"conv1": (16, 32, 32), "pool1": (16, 16, 16), "conv2": (32, 16, 16), "pool2": (32, 8, 8)}),
    "spectrogram": (lambda: SpectrogramCNN(n_mels=40), (2, 40, 101), (2, 10),
                    {"norm": (1, 40, 101), "block1": (16, 20, 50), "block2": (32, 10, 25),
                     "block3": (64, 5, 12)}),
}
REFERENCE = {  # output[0, :3] in eval mode for torch.manual_seed(0) weights and seed-1 inputs
    "lenet": [0.0547, 0.0780, -0.1635],
    "resnet": [-0.1753, 0.1110, -0.1285],
    "lenet_rgb": [-0.1686, -0.1357, -0.0968],
    "spectrogram": [0.0633, 0.0350, 0.1709],
}


def _seeded(name):
    make, in_shape, *_ = CASES[name]
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(in_shape, generator=torch.Generator().manual_seed(1))
    return model, x


@pytest.mark.parametrize("name", CASES)
def test_output_shape_and_seeded_reference(name):
    model, x = _seeded(name)
    out = model(x)
    assert out.shape == CASES[name][2]
    torch.testing.assert_close(out[0, :3], torch.tensor(REFERENCE[name]), atol=2e-4, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_feature_maps_shapes_and_consistency(name):
    model, x = _seeded(name)
    maps = model.feature_maps(x)
    assert {k: tuple(v.shape[1:]) for k, v in maps.items()} == CASES[name][3]
    assert all(v.shape[0] == x.shape[0] for v in maps.values())
    # The head applied to the last feature map is the model's output: the maps are the real activations.
    torch.testing.assert_close(model.head(list(maps.values())[-1]), model(x))


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="4-D"):
        LeNet()(torch.zeros(28, 28))
    with pytest.raises(ValueError, match="1 input channel"):
        LeNet()(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="3 input channel"):
        ResidualCNN(in_channels=3).feature_maps(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="40 Mel bands"):
        SpectrogramCNN(n_mels=40)(torch.zeros(2, 64, 101))
    with pytest.raises(ValueError, match="4-D"):
        SpectrogramCNN()(torch.zeros(40, 101))
    with pytest.raises(ValueError, match="divisible by 4"):
        LeNet(image_size=30)


def test_residual_block_is_identity_plus_body():
    torch.manual_seed(0)
    block = ResidualBlock(8, 8).eval()
    x = torch.randn(2, 8, 6, 6)
    nn.init.zeros_(block.body[-1].weight)  # body output = BN bias = 0: the block reduces to ReLU(x)
    torch.testing.assert_close(block(x), torch.relu(x))
    down = ResidualBlock(8, 16, stride=2)
    assert down(x).shape == (2, 16, 3, 3)


def test_parameter_counts():
    assert count_parameters(LeNet()) == 215_418
    assert count_parameters(ResidualCNN()) == 77_754
    assert count_parameters(nn.Linear(3, 2)) == 8


def test_lenet_learns_real_digits():
    """A real fit: LeNet on scikit-learn's 8x8 digits beats 90 % on held-out digits in seconds."""
    from mmcourse.data import sklearn_digits
    from mmcourse.train import evaluate, fit, loaders

    data = sklearn_digits()
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    train = torch.utils.data.TensorDataset(data.x[perm[:1400]], data.y[perm[:1400]])
    test = torch.utils.data.TensorDataset(data.x[perm[1400:]], data.y[perm[1400:]])
    torch.manual_seed(0)
    model = LeNet(image_size=8, widths=(8, 16), hidden=32)
    fit(model, loaders(train, batch_size=64), epochs=4, lr=3e-3, progress=False, device=torch.device("cpu"))
    acc = evaluate(model, loaders(train, test)[1], device=torch.device("cpu"))["accuracy"]
    assert acc > 0.9, acc


def test_feature_map_panel_redraws_on_control_change():
    model, x = _seeded("lenet")
    maps = model.feature_maps(x)
    panel = feature_map_panel(x, maps, titles=["a", "b"])
    first = panel.image.value
    assert panel.draws == 1 and set(panel.controls) == {"image", "layer", "channel"}
    after_channel = panel.set(channel=5)
    after_layer = panel.set(layer="conv2")
    after_image = panel.set(image=1)
    assert len({first, after_channel, after_layer, after_image}) == 4
    assert panel.draws == 4 and panel.caption.value == "b"
    with pytest.raises(ValueError, match="N=2"):
        feature_map_panel(x, {"bad": maps["conv1"][:1]})


def test_plot_filters_checks_rank():
    from matplotlib.figure import Figure

    plot_filters(Figure(), LeNet().first_conv.weight)  # [16, 1, 5, 5] draws
    with pytest.raises(ValueError, match="C_out, C_in, k, k"):
        plot_filters(Figure(), torch.zeros(3, 5, 5))
