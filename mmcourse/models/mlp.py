"""A multi-layer perceptron, and backpropagation through a one-hidden-layer MLP by hand.

``MLP`` is the network the chapter trains on MNIST: flatten -> (Linear -> activation ->
dropout) per hidden layer -> Linear to class logits.

``manual_gradients`` is the lesson of backprop written out: the forward pass of a
one-hidden-layer tanh network, then the chain rule applied layer by layer, backwards.
``tiny_params`` pulls such a network's weights out of an ``MLP(d, [h], k, activation="tanh")``
so that the hand-made gradients can be compared with autograd's on the very same module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
}  # fmt: skip


class MLP(nn.Module):
    """Flatten -> [Linear -> activation -> Dropout] x len(hidden) -> Linear.

    Args:
        in_features: D, the number of input features (784 for a 28x28 image).
        hidden: sizes of the hidden layers, e.g. ``(256, 128)``; ``()`` is logistic regression.
        num_classes: K, the number of outputs (logits).
        dropout: probability of zeroing a hidden unit while training (0 disables dropout).
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"`` or ``"gelu"``.

    Input ``[B, D]`` or ``[B, *shape]`` with ``prod(shape) == D`` (images ``[B, 1, 28, 28]``);
    output logits ``[B, K]``.
    """

    def __init__(self, in_features: int = 784, hidden: Sequence[int] = (256, 128), num_classes: int = 10,
                 dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        sizes = [in_features, *hidden, num_classes]
        if any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"in_features, hidden sizes and num_classes must be positive ints, got {sizes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.in_features, self.num_classes = in_features, num_classes
        layers: list[nn.Module] = []
        for d_in, d_out in zip(sizes[:-2], sizes[1:-1], strict=True):
            layers += [nn.Linear(d_in, d_out), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, D]`` or ``[B, *shape]`` -> logits ``[B, K]``."""
        if x.ndim < 2:
            raise ValueError(f"expected a batch [B, {self.in_features}] or [B, *shape], got shape {tuple(x.shape)}")
        x = x.flatten(1)  # [B, D]
        if x.shape[1] != self.in_features:
            raise ValueError(f"expected {self.in_features} features per item, got {x.shape[1]} "
                             f"(input shape {tuple(x.shape)})")
        return self.net(x)


# ---------------------------------------------------------------------------------------------
# Backpropagation by hand: x [B, D] -> z1 = x W1^T + b1 [B, H] -> h = tanh(z1) -> z2 = h W2^T + b2 [B, K]
# ---------------------------------------------------------------------------------------------

PARAM_NAMES = ("W1", "b1", "W2", "b2")  # W1 [H, D], b1 [H], W2 [K, H], b2 [K]


def tiny_params(model: MLP) -> dict[str, torch.Tensor]:
    """The weights of an ``MLP(D, [H], K, activation="tanh")`` as ``{"W1", "b1", "W2", "b2"}`` (detached)."""
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    acts = [m for m in model.net if not isinstance(m, nn.Linear | nn.Dropout)]
    if len(linears) != 2 or not all(isinstance(a, nn.Tanh) for a in acts):
        raise ValueError("tiny_params needs an MLP with exactly one hidden layer and tanh activation")
    (l1, l2) = linears
    return {"W1": l1.weight.detach(), "b1": l1.bias.detach(), "W2": l2.weight.detach(), "b2": l2.bias.detach()}


def _check_tiny(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, loss: str) -> None:
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; expected keys {PARAM_NAMES}")
    h, d = params["W1"].shape
    k = params["W2"].shape[0]
    if params["b1"].shape != (h,) or params["W2"].shape != (k, h) or params["b2"].shape != (k,):
        raise ValueError(f"inconsistent shapes: W1 {tuple(params['W1'].shape)}, b1 {tuple(params['b1'].shape)}, "
                         f"W2 {tuple(params['W2'].shape)}, b2 {tuple(params['b2'].shape)}")
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must be [B, {d}], got shape {tuple(x.shape)}")
    if loss == "ce":
        if y.shape != (x.shape[0],) or y.is_floating_point():
            raise ValueError(f"cross-entropy needs integer labels y [{x.shape[0]}], got {tuple(y.shape)} {y.dtype}")
    elif loss == "mse":
        if y.shape != (x.shape[0], k):
            raise ValueError(f"MSE needs float targets y [{x.shape[0]}, {k}], got {tuple(y.shape)}")
    else:
        raise ValueError(f"loss must be 'ce' or 'mse', got {loss!r}")


def manual_gradients(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                     loss: str = "ce") -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and its gradients w.r.t. W1, b1, W2, b2 by the chain rule, without autograd.

    Args:
        params: ``{"W1" [H, D], "b1" [H], "W2" [K, H], "b2" [K]}``.
        x: inputs ``[B, D]``.
        y: labels ``[B]`` (int) for ``loss="ce"`` (mean cross-entropy of softmax(z2)), or
           targets ``[B, K]`` (float) for ``loss="mse"`` (mean over all B*K squared errors).

    Returns ``(loss, grads)`` with ``grads[name]`` shaped like ``params[name]``.
    """
    _check_tiny(params, x, y, loss)
    W1, b1, W2, b2 = (params[k] for k in PARAM_NAMES)
    B = x.shape[0]
    # forward, keeping what the backward pass needs
    z1 = x @ W1.T + b1  # [B, H]
    h = torch.tanh(z1)  # [B, H]
    z2 = h @ W2.T + b2  # [B, K]
    if loss == "ce":
        logp = z2 - torch.logsumexp(z2, dim=1, keepdim=True)  # [B, K] log-softmax
        value = -logp[torch.arange(B), y].mean()
        dz2 = (logp.exp() - F.one_hot(y, z2.shape[1]).to(z2.dtype)) / B  # dL/dz2 = (softmax - onehot) / B
    else:
        value = ((z2 - y) ** 2).mean()
        dz2 = 2 * (z2 - y) / z2.numel()  # dL/dz2 [B, K]
    # backward: each line is one step of the chain rule
    dW2 = dz2.T @ h  # [K, H]
    db2 = dz2.sum(0)  # [K]
    dh = dz2 @ W2  # [B, H]
    dz1 = dh * (1 - h**2)  # [B, H]   tanh'(z) = 1 - tanh(z)^2
    dW1 = dz1.T @ x  # [H, D]
    db1 = dz1.sum(0)  # [H]
    return float(value), {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def autograd_gradients(model: MLP, x: torch.Tensor, y: torch.Tensor,
                       loss: str = "ce") -> tuple[float, dict[str, torch.Tensor]]:
    """The same loss and gradients as :func:`manual_gradients`, by ``loss.backward()`` on ``model``."""
    params = tiny_params(model)
    _check_tiny(params, x, y, loss)
    model.zero_grad(set_to_none=True)
    out = model(x)  # [B, K]
    value = F.cross_entropy(out, y) if loss == "ce" else F.mse_loss(out, y)
    value.backward()
    l1, l2 = (m for m in model.net if isinstance(m, nn.Linear))
    grads = {"W1": l1.weight.grad, "b1": l1.bias.grad, "W2": l2.weight.grad, "b2": l2.bias.grad}
    return float(value.detach()), {k: g.detach().clone() for k, g in grads.items()}
