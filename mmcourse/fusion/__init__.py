"""Fusion strategies (chapter 06): each a small module taking a dict of modality tensors.

=========================  ================  =============================================
module                     level             output
=========================  ================  =============================================
``EarlyFusion``            data (early)      raw inputs resized, stacked as channels -> CNN
``ConcatFusion``           feature           ``[h_1; ...; h_M]``
``LateFusion``             decision (late)   mean / learned weights / product of experts
``TensorFusion``           feature           ``W vec([h_1; 1] x ... x [h_M; 1])``
``LowRankTensorFusion``    feature           the same with a rank-R weight tensor
``GatedMultimodalUnit``    feature           ``sum_m z_m * tanh(W_m h_m)``, gates ``z``
``AttentionFusion``        feature           a learned query attends over modality embeddings
``CrossModalTransformer``  feature (tokens)  each modality's tokens attend to the others'
``HybridFusion``           feature+decision  joint head and per-modality heads, weighted
``MultimodalModel``        composition       encoders -> fusion -> head
=========================  ================  =============================================

Missing modalities: a missing key raises ``ValueError``, except for the strategies with
``supports_missing = True`` (``LateFusion`` and ``AttentionFusion``), which combine the
modalities present (see each class).
"""

from mmcourse.fusion.attention import AttentionFusion
from mmcourse.fusion.base import Fusion, low_rank_params, tensor_fusion_params
from mmcourse.fusion.concat import ConcatFusion
from mmcourse.fusion.cross_transformer import CrossModalTransformer
from mmcourse.fusion.early import EarlyFusion
from mmcourse.fusion.gmu import GatedMultimodalUnit
from mmcourse.fusion.hybrid import HybridFusion
from mmcourse.fusion.late import LateFusion
from mmcourse.fusion.model import MultimodalModel
from mmcourse.fusion.tensor import LowRankTensorFusion, TensorFusion

__all__ = [
    "AttentionFusion",
    "ConcatFusion",
    "CrossModalTransformer",
    "EarlyFusion",
    "Fusion",
    "GatedMultimodalUnit",
    "HybridFusion",
    "LateFusion",
    "LowRankTensorFusion",
    "MultimodalModel",
    "TensorFusion",
    "low_rank_params",
    "tensor_fusion_params",
]
