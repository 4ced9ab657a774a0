"""Pruning: unstructured magnitude pruning, and structured channel pruning that rebuilds a smaller net.

* **Magnitude (unstructured)**: zero the weights of smallest ``|w|`` across all conv and linear
  layers (``torch.nn.utils.prune.global_unstructured``). The tensors keep their shapes, so dense
  kernels do exactly the same work: smaller when compressed, *not* faster.
* **Structured (channels)**: rank each convolution's output channels by the L1 norm of the
  filter after folding in its BatchNorm (``|gamma| / sqrt(var + eps) * ||W_c||_1``), keep the top
  share, and build a *new, narrower* network with the kept slices of every weight: fewer
  multiply-adds, really faster. It then needs a little fine-tuning.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

from mmcourse.models.cnn import LeNet


def _weighted(model: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv1d | nn.Linear)]


def magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """A copy of ``model`` with the ``amount`` share of its conv/linear weights of smallest |w| set to 0."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    out = copy.deepcopy(model)
    params = _weighted(out)
    if amount > 0:
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
        for m, name in params:
            prune.remove(m, name)  # make the zeros permanent: a plain weight tensor again
    return out


def sparsity(model: nn.Module) -> float:
    """Share of exactly-zero weights among all conv/linear weights."""
    ws = [m.weight for m, _ in _weighted(model)]
    return float(sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws))


def channel_scores(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``[C_out]``: L1 norm of each BN-folded filter, ``|gamma_c| / sqrt(var_c + eps) * ||W_c||_1``."""
    scale = bn.weight.detach().abs() / torch.sqrt(bn.running_var + bn.eps)
    return scale * conv.weight.detach().abs().sum(dim=(1, 2, 3))


def _keep(scores: torch.Tensor, share: float) -> torch.Tensor:
    k = max(1, round(share * len(scores)))
    return scores.topk(k).indices.sort().values  # kept channel indices, in order


@torch.no_grad()
def prune_lenet(model: LeNet, keep: float = 0.5) -> LeNet:
    """A new, narrower :class:`LeNet` keeping the ``keep`` share of each conv layer's channels.

    conv1 ``[c1, C, 5, 5]`` -> ``[k1, C, 5, 5]``; conv2 ``[c2, c1, 5, 5]`` -> ``[k2, k1, 5, 5]``;
    the first linear layer keeps the input columns of the kept conv2 channels (``k2 * s * s``).
    """
    if not isinstance(model, LeNet):
        raise ValueError(f"prune_lenet expects a LeNet, got {type(model).__name__}")
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    conv1, bn1 = model.features.conv1[0], model.features.conv1[1]
    conv2, bn2 = model.features.conv2[0], model.features.conv2[1]
    fc1, fc2 = model.head[1], model.head[4]
    s2 = fc1.in_features // conv2.out_channels  # s * s spatial positions per channel
    k1 = _keep(channel_scores(conv1, bn1), keep)
    k2 = _keep(channel_scores(conv2, bn2), keep)
    small = LeNet(model.in_channels, fc2.out_features, widths=(len(k1), len(k2)), hidden=fc1.out_features,
                  image_size=4 * round(s2**0.5), dropout=model.head[3].p)
    n_conv1, n_bn1 = small.features.conv1[0], small.features.conv1[1]
    n_conv2, n_bn2 = small.features.conv2[0], small.features.conv2[1]
    n_conv1.weight.copy_(conv1.weight[k1])
    n_conv2.weight.copy_(conv2.weight[k2][:, k1])
    for new, old, idx in ((n_bn1, bn1, k1), (n_bn2, bn2, k2)):
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, name).copy_(getattr(old, name)[idx])
        new.num_batches_tracked.copy_(old.num_batches_tracked)
    cols = (k2[:, None] * s2 + torch.arange(s2)).flatten()  # flatten is channel-major: [c, h, w]
    small.head[1].weight.copy_(fc1.weight[:, cols])
    small.head[1].bias.copy_(fc1.bias)
    small.head[4].load_state_dict(fc2.state_dict())
    return small.train(model.training)
