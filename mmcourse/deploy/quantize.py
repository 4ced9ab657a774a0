"""int8 quantization: ONNX Runtime dynamic and static (calibrated), and PyTorch dynamic.

A float32 weight takes 4 bytes; int8 takes 1, plus a scale (and zero point) per tensor or per
output channel: ``w ~ scale * (q - zero_point)``, ``q`` in -128..127.

* **dynamic** (``quantize_dynamic``): weights are int8 on disk; activations are quantized on the
  fly, each call, from their observed range. No data needed.
* **static** (``quantize_static``): the activations' ranges are fixed beforehand by running
  *calibration* batches through the model (:class:`ArrayCalibrationReader`); the file stores
  QuantizeLinear/DequantizeLinear pairs (QDQ) that ONNX Runtime fuses into int8 kernels.
* **PyTorch dynamic** (:func:`torch_dynamic_int8`): ``nn.Linear`` (and LSTM) weights in int8,
  for eager CPU inference.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mmcourse.deploy.export import quiet


def quantize_dynamic_onnx(src: str | Path, dst: str | Path) -> Path:
    """Dynamic int8 (weights int8, per-tensor activations at run time) of the ONNX file ``src``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet():  # its advice to pre-process is for models with unknown shapes
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    return Path(dst)


class ArrayCalibrationReader:
    """ONNX Runtime ``CalibrationDataReader`` over in-memory arrays: one feed dict per batch.

    ``inputs``: ``{input name: float32 array [N, ...]}``, all with the same ``N``.
    """

    def __init__(self, inputs: dict[str, np.ndarray], batch_size: int = 32):
        sizes = {k: len(v) for k, v in inputs.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"calibration inputs must have the same length, got {sizes}")
        self.inputs, self.batch_size = inputs, batch_size
        self.n = next(iter(sizes.values()))
        self._it: Iterator[dict[str, np.ndarray]] | None = None

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for s in range(0, self.n, self.batch_size):
            yield {k: np.ascontiguousarray(v[s : s + self.batch_size], dtype=np.float32)
                   for k, v in self.inputs.items()}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._it is None:
            self._it = self._batches()
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = None


def quantize_static_onnx(src: str | Path, dst: str | Path, calibration: dict[str, np.ndarray],
                         batch_size: int = 32, per_channel: bool = True) -> Path:
    """Static int8 (QDQ; int8 weights per channel, activation ranges from ``calibration``) of ``src``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(ArrayCalibrationReader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory() as tmp, quiet():
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # shapes + graph clean-up
        quantize_static(str(pre), str(dst), Reader(calibration, batch_size), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return Path(dst)


def torch_dynamic_int8(model: nn.Module, layers: Sequence[type[nn.Module]] = (nn.Linear, nn.LSTM)) -> nn.Module:
    """PyTorch dynamic int8 of ``layers`` (a quantized copy; ``model`` is unchanged)."""
    import copy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), set(layers), dtype=torch.qint8)


def state_dict_kb(model: nn.Module) -> float:
    """Size of ``torch.save(model.state_dict())`` in KB (1,000 bytes)."""
    import io

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return len(buf.getvalue()) / 1000
