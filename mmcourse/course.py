"""The course map: chapters, their notebooks and the book's sections. One place holds it
(and the repository URL), so that the tour, the Colab cells and the checks agree."""

from __future__ import annotations

REPO = "mmcourse/mmcourse"  # GitHub owner/name: the badge and Colab install use it
BRANCH = "main"
REPO_URL = f"https://github.com/{REPO}"

# (notebook stem, title, the book's section it teaches)
CHAPTERS: list[tuple[str, str, str]] = [
    ("00_setup_and_tour", "Set-up and a tour", "Preface: how to use this course"),
    ("01_multimodal_data", "Multimodal data", "Ch. 1-2: multimodal data; text, image, audio preprocessing; STFT, Mel, MFCC"),
    ("02_deep_learning_basics", "Deep-learning basics", "Ch. 3: neurons, backprop, losses, SGD/Adam, metrics"),
    ("03_convolutions", "Convolutional networks", "Ch. 4: convolution, pooling, feature maps, detection and segmentation"),
    ("04_recurrent_networks", "Recurrent networks", "Ch. 5: RNN, LSTM, GRU, CNN+RNN"),
    ("05_attention_and_transformers", "Attention and Transformers", "Ch. 6: attention, multi-head attention, Transformer, ViT, BERT"),
    ("06_fusion_strategies", "Fusion strategies", "Ch. 7: early, feature-level, late, modular, tensor and attention fusion"),
    ("07_multimodal_learning", "Learning across modalities",
     "Ch. 2.3: multimodal learning frameworks; joint, transfer and contrastive learning"),
    ("08_fine_tuning", "Fine-tuning pretrained models",
     "Fine-tuning: techniques, strategies and parameter tuning; cases 4.1-4.3 (sentiment, image recognition, speech recognition)"),
    ("09_project_sentiment", "Project: image + text sentiment",
     "Ch. 3.2: image and text fusion for multimodal sentiment analysis; Ch. 4.1: fine-tuning for a task"),
    ("10_project_vqa", "Project: visual question answering",
     "Ch. 8: an image-and-text question-answering system; sub-models, fusion and interaction, prediction"),
    ("11_project_speech_recognition", "Project: speech recognition",
     "Speech recognition: system architecture (features, acoustic model, language model, decoder); fine-tuning case 4.3"),
    ("12_deployment", "Deployment",
     "Deployment: the deployment process; optimisation (quantization, pruning, distillation); edge devices; serving with Docker"),
    ("14_tiny_multimodal_lm", "A tiny multimodal language model",
     "Multimodal large models: GPT-style generation, LLaVA- and Flamingo-style vision-language models, distributed training"),
]


def colab_url(stem: str) -> str:
    return f"https://colab.research.google.com/github/{REPO}/blob/{BRANCH}/notebooks/{stem}.ipynb"


def chapter(stem: str) -> tuple[str, str, str]:
    for c in CHAPTERS:
        if c[0] == stem:
            return c
    raise KeyError(f"{stem} is not in the course map (mmcourse/course.py)")


def course_map_markdown() -> str:
    rows = ["| notebook | chapter | book section |", "| --- | --- | --- |"]
    rows += [f"| `{s}` | {t} | {b} |" for s, t, b in CHAPTERS]
    return "\n".join(rows)
