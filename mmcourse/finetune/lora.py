"""Low-rank adaptation (LoRA, Hu et al. 2021) through ``peft``.

A frozen weight ``W [out, in]`` gains a trainable update ``B A`` of rank ``r``
(``A [r, in]``, ``B [out, r]``, ``B`` starts at zero so the model starts unchanged), scaled by
``alpha / r``: ``y = W x + (alpha / r) B A x``. Only ``A`` and ``B`` (and the new head, listed in
``train``) learn, a fraction of a percent of the parameters. :func:`merge` folds ``B A`` into ``W``,
giving a plain model of the original size and speed.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def add_lora(model: nn.Module, targets: Sequence[str] | str, r: int = 8, alpha: int = 16,
             dropout: float = 0.0, train: Sequence[str] = ()) -> nn.Module:
    """Wrap ``model`` with LoRA adapters of rank ``r`` on the modules named by ``targets``.

    Args:
        targets: module names (suffixes, e.g. ``["query", "value"]`` for BERT/MiniLM) or a regular
            expression matched against full module names (e.g. for torchvision conv layers).
            Linear, Conv2d and Embedding layers are supported by ``peft``.
        train: names of modules that train fully (e.g. a new classification head) and are saved
            with the adapters (peft's ``modules_to_save``).

    Returns the ``peft`` model: every original weight frozen, the adapters and ``train`` modules
    trainable. ``model`` itself is modified in place (its layers are replaced by LoRA layers).
    """
    from peft import LoraConfig, get_peft_model

    if r < 1:
        raise ValueError(f"add_lora: the rank r must be >= 1, got {r}")
    target_modules = targets if isinstance(targets, str) else list(targets)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                        modules_to_save=list(train) or None, bias="none")
    try:
        return get_peft_model(model, config)
    except ValueError as err:  # peft: "Target modules ... not found in the base model"
        names = [n for n, _ in model.named_modules() if n][:12]
        raise ValueError(f"add_lora: no module of the model matches targets={targets!r} ({err}). "
                         f"Fix: pass names that appear in model.named_modules(), e.g. {names}") from err


def lora_parameters(model: nn.Module) -> list[str]:
    """Names of the adapter parameters (``lora_A`` / ``lora_B``) of a LoRA-wrapped model."""
    return [n for n, _ in model.named_parameters() if "lora_" in n]


def merge(model: nn.Module) -> nn.Module:
    """Fold the adapters into the base weights (``W + (alpha/r) B A``) and drop the peft wrapper:
    a plain ``nn.Module`` that computes the same outputs."""
    return model.merge_and_unload()
