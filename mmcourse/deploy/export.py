"""Export a trained model for serving: ``torch.export``, then ONNX, and a parity check.

    model (eager, Python) --torch.export--> ExportedProgram (an FX graph of aten ops, no Python)
                          --torch.onnx.export(dynamo=True)--> model.onnx --onnxruntime--> logits

The ONNX exporter traces the model with symbolic shapes. ``dynamic_batch=True`` marks dim 0 of
every input as one symbol ``batch``, so the file runs at any batch size. Python code that needs a
*concrete* batch size (hashing it, ``set(...)`` of sizes, ``int(x.shape[0])`` in a branch) makes the
tracer give up or specialise: the file then silently accepts one batch size only.
:func:`export_onnx` checks the file's input shapes and raises :class:`ExportError` instead.

Models that take a dict (``MultimodalModel``) are exported through :class:`DictInputs`, which takes
the modalities as positional tensors, in a fixed order, as ONNX needs.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

META_KEY = "mmcourse"  # key of the JSON metadata stored in an ONNX file (read by the service)


class ExportError(RuntimeError):
    """The exported model is not what was asked for (e.g. a batch size fixed by the tracer)."""


class DictInputs(nn.Module):
    """``forward(*tensors) = model({names[i]: tensors[i]})``: a dict-input model with positional inputs."""

    def __init__(self, model: nn.Module, names: Sequence[str]):
        super().__init__()
        self.model, self.names = model, tuple(names)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, xs, strict=True)))  # [B, K]


class ConcatServing(nn.Module):
    """The inference graph of a concat-fusion ``MultimodalModel``, without its Python input checks.

    ``forward(*xs) = head([enc_1(x_1); ...; enc_M(x_M)])``: the same weights and the same arithmetic
    as ``model(dict)`` (:func:`parity` proves it), but no ``set()`` of batch sizes for the tracer to
    specialise. The service validates inputs before they reach the graph.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        from mmcourse.fusion import ConcatFusion

        if not isinstance(getattr(model, "fusion", None), ConcatFusion):
            raise ValueError(f"ConcatServing needs a MultimodalModel with ConcatFusion, got {type(model).__name__}")
        self.names = model.fusion.modalities
        self.encoders, self.head = model.encoders, model.head

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        h = [self.encoders[m](x) for m, x in zip(self.names, xs, strict=True)]  # M x [B, d]
        return self.head(torch.cat(h, dim=-1))  # [B, K]


@contextlib.contextmanager
def quiet():
    """Silence the exporter's progress lines, torch's guard logs and warnings (errors still raise)."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _dynamic_shapes(model: nn.Module, n_inputs: int) -> tuple:
    """Dim 0 of every input is one symbol, ``batch``; ``forward(*xs)`` takes them as one tuple."""
    batch = torch.export.Dim("batch", max=4096)
    specs = tuple({0: batch} for _ in range(n_inputs))
    params = inspect.signature(model.forward).parameters.values()
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    return (specs,) if varargs else specs


def export_program(model: nn.Module, example: Sequence[torch.Tensor], dynamic_batch: bool = True,
                   strict: bool = False) -> torch.export.ExportedProgram:
    """``torch.export.export`` of ``model.eval()`` at ``example`` (a tuple of tensors, batch first)."""
    model.eval()
    shapes = _dynamic_shapes(model, len(example)) if dynamic_batch else None
    with quiet():
        return torch.export.export(model, tuple(example), dynamic_shapes=shapes, strict=strict)


def input_shapes(path: str | Path) -> dict[str, list[int | str]]:
    """``{input name: shape}`` of an ONNX file; a symbolic dim is its name (e.g. ``"batch"``)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}


def export_onnx(model: nn.Module, example: Sequence[torch.Tensor], path: str | Path,
                input_names: Sequence[str], output_names: Sequence[str] = ("logits",),
                dynamic_batch: bool = True) -> Path:
    """Export ``model`` to ONNX at ``path`` with the dynamo exporter; returns the path.

    ``example``: one tensor per input, batch first (a batch of 4 or more: sizes 0 and 1 are
    special to the tracer). With ``dynamic_batch`` the file's batch dim must come out symbolic,
    else :class:`ExportError` says which input got a fixed size.
    """
    if len(example) != len(input_names):
        raise ValueError(f"{len(example)} example tensors but {len(input_names)} input_names")
    model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shapes = _dynamic_shapes(model, len(example)) if dynamic_batch else None
    with quiet():
        prog = torch.onnx.export(model, tuple(example), dynamo=True, dynamic_shapes=shapes, verbose=False,
                                 input_names=list(input_names), output_names=list(output_names))
    prog.save(str(path))  # weights inside the file (external data only above 2 GB)
    strip_debug_info(path)
    if dynamic_batch:
        fixed = {n: s[0] for n, s in input_shapes(path).items() if not isinstance(s[0], str)}
        if fixed:
            raise ExportError(f"the exported batch dim is fixed: {fixed} (example batch {len(example[0])}). "
                              "Python code in the model needed a concrete batch size (e.g. set() or hash of "
                              "x.shape[0]); compare sizes with ==/torch._check instead, or export a wrapper "
                              "without that check")
    return path


def strip_debug_info(path: str | Path) -> None:
    """Drop what only a debugger needs: each node's Python stack trace and names (``metadata_props``,
    ``doc_string``, added by the dynamo exporter) and the intermediate shapes (``value_info``).

    For a small model they are a fifth of the file, and they would be most of an int8 file.
    """
    import onnx

    def strip(graph) -> None:
        del graph.value_info[:]
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attr in node.attribute:
                if attr.HasField("g"):
                    strip(attr.g)
                for g in attr.graphs:
                    strip(g)

    model = onnx.load(str(path))
    strip(model.graph)
    onnx.save(model, str(path))


def write_metadata(path: str | Path, meta: dict) -> None:
    """Store ``meta`` (JSON) in the ONNX file's ``metadata_props`` under :data:`META_KEY`."""
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    m.metadata_props.add(key=META_KEY, value=json.dumps(meta))
    onnx.save(m, str(path))


def read_metadata(sess) -> dict:
    """The :data:`META_KEY` metadata of an ONNX Runtime session's model (``{}`` if none)."""
    raw = sess.get_modelmeta().custom_metadata_map.get(META_KEY)
    return json.loads(raw) if raw else {}


def session(path: str | Path, threads: int = 1):
    """An ``onnxruntime.InferenceSession`` on the CPU with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_session(sess, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """The first output of ``sess`` on positional ``inputs`` (float32 arrays, batch first)."""
    feed = {i.name: np.ascontiguousarray(x) for i, x in zip(sess.get_inputs(), inputs, strict=True)}
    return sess.run(None, feed)[0]


@torch.no_grad()
def parity(model: nn.Module, sess, inputs: Sequence[torch.Tensor], batch_size: int = 256) -> dict:
    """Run ``model`` (eager) and ``sess`` (ONNX Runtime) over all of ``inputs``; compare logits.

    Returns ``{"n", "max_abs_diff", "same_predictions"}`` (the share of rows whose argmax agrees).
    """
    model.eval()
    n = len(inputs[0])
    diffs, same = [], 0
    for s in range(0, n, batch_size):
        xs = [x[s : s + batch_size] for x in inputs]
        ref = model(*xs).float().numpy()  # [b, K]
        got = run_session(sess, [x.numpy() for x in xs])
        diffs.append(float(np.abs(ref - got).max()))
        same += int((ref.argmax(1) == got.argmax(1)).sum())
    return {"n": n, "max_abs_diff": max(diffs), "same_predictions": same / n}


def file_kb(path: str | Path) -> float:
    """Size of a file on disk in KB (1,000 bytes)."""
    return Path(path).stat().st_size / 1000
