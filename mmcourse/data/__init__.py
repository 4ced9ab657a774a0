"""Real datasets for the course, downloaded from their canonical sources and verified.

Each loader returns tensors whose shapes and dtypes are documented in its docstring.
Set ``MMCOURSE_DATA`` to use a folder that already has the files (CI uses ``../shared/datasets``).

=====================  ===========================================================
``mnist_pool(split)``  MNIST's 10,000 t10k images, fixed 8,000/1,000/1,000 split
``fashion_mnist``      Fashion-MNIST, 60,000 train / 10,000 test
``FSDD``               Free Spoken Digit Dataset, 3,000 recordings at 8 kHz
``tiny_shakespeare``   1.1 MB of Shakespeare, for character-level models
``easy_vqa_split``     easy-VQA (from the ``easy-vqa`` package)
``sklearn_digits``     scikit-learn's 8x8 digits; ``photo(name)``: scikit-image photos
=====================  ===========================================================
"""

from mmcourse.data.avdigits import AVDigits, DictBatches
from mmcourse.data.base import TensorData
from mmcourse.data.demos import photo, sklearn_digits
from mmcourse.data.fsdd import FSDD, SPEAKERS
from mmcourse.data.images import FASHION_CLASSES, fashion_mnist, mnist_pool
from mmcourse.data.registry import (
    REGISTRY,
    ChecksumError,
    DataError,
    DataNotFoundError,
    fetch,
    read_verified,
)
from mmcourse.data.text import tiny_shakespeare
from mmcourse.data.vqa import easy_vqa_split

__all__ = [
    "AVDigits",
    "DictBatches",
    "FASHION_CLASSES",
    "FSDD",
    "REGISTRY",
    "SPEAKERS",
    "ChecksumError",
    "DataError",
    "DataNotFoundError",
    "TensorData",
    "easy_vqa_split",
    "fashion_mnist",
    "fetch",
    "mnist_pool",
    "photo",
    "read_verified",
    "sklearn_digits",
    "tiny_shakespeare",
]
