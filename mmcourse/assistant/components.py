"""The common shape of the assistant's component adapters (chapter 13).

Each adapter wraps one model behind a small interface, so the app calls it and the notebook reports
it the same way, and a better model (chapter 08's fine-tuned MobileNetV2, a chapter 09 sentiment
model) replaces it without touching the app:

==============================  ==================================================================
``anger.MiniLMAnger``          ``model(text) -> P(negative)``, the dialogue's ``is_angry`` hook
``anger.AngerModel``           the same, TF-IDF (fast mode)
``items.ItemRecognizer``        ``recognize(image [1, 28, 28]) -> Item`` (a catalogue item or a reject)
``voice.Listener``              ``transcribe(wave, sample_rate, kind) -> Heard`` (digits or words)
``voice.speak``                 reply text -> WAV bytes (espeak-ng)
==============================  ==================================================================

Every adapter has a ``name`` (shown by ``GET /health``) and ``evaluate() -> dict[str, float]``: its
own numbers on held-out data, measured when called (the notebook records them).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Component(Protocol):
    name: str

    def evaluate(self) -> dict[str, float]:
        """The component's numbers on held-out data (e.g. ``{"accuracy": 0.91}``)."""
        ...
