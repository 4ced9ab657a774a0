"""mmcourse: helpers and real PyTorch models for the course
"Multimodal large models: principles and practice".

One concept per module:

- ``mmcourse.config``   fast mode, paths, seeding
- ``mmcourse.device``   the device (cuda / mps / cpu), chosen once, the CPU thread policy, and AMP
- ``mmcourse.data``     dataset registry, download + verify, real datasets
- ``mmcourse.audio``    loading, padding, resampling, batched STFT / Mel / MFCC, feature cache
- ``mmcourse.train``    ``fit()`` / ``evaluate()`` / ``predict()`` for any ``nn.Module``
- ``mmcourse.metrics``  accuracy, precision, recall, F1, confusion matrix
- ``mmcourse.results``  record a chapter's headline numbers and assert its targets
"""

from mmcourse.config import FAST, is_fast, pick, seed_everything
from mmcourse.device import configure_threads, get_device

configure_threads()  # MMCOURSE_THREADS / OMP_NUM_THREADS, once per process (see mmcourse.device)

__version__ = "0.1.0"
__all__ = ["FAST", "is_fast", "pick", "seed_everything", "configure_threads", "get_device", "__version__"]
