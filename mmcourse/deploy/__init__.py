"""Deployment (chapter 12): export, quantize, prune, distill, measure latency, serve over HTTP.

=================  ==============================================================================
module             what
=================  ==============================================================================
``export``         ``torch.export`` and ONNX (dynamo exporter, dynamic batch), parity vs PyTorch
``pipeline``       the served graph: raw pixels + raw waveform -> logits (log-Mel inside ONNX)
``quantize``       int8: ONNX Runtime dynamic and static (calibration reader), PyTorch dynamic
``prune``          magnitude pruning; structured channel pruning that rebuilds a smaller LeNet
``distill``        Hinton's distillation loss with temperature
``latency``        p50 / p95 latency, warm-up excluded, at a chosen thread count
``serve``          the FastAPI service: /predict (micro-batching, bounded queue), /health, a page
``loadtest``       a bounded loopback load-test client: throughput, p50 / p99, errors
=================  ==============================================================================

Submodules are imported on demand (``from mmcourse.deploy.export import export_onnx``): the
service does not need the training code, and ONNX / FastAPI are only needed here.
"""
