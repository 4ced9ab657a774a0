"""The course's models, one concept per file: import them directly, e.g.
``from mmcourse.models.mlp import MLP`` or ``from mmcourse.models.cnn import ...``."""
