"""Fine-tuning a pretrained model (chapter 08), one idea per file:

================  ===============================================================
``freeze.py``     choosing what trains: freeze all, unfreeze the last k blocks, and
                  optimiser groups with a smaller learning rate for the backbone
``lora.py``       low-rank adapters through ``peft``: add, count, merge
``images.py``     ImageNet MobileNetV2 -> Fashion-MNIST: the five strategies, the weights' own
                  preprocessing, the cached frozen prefix, augmentation, clear input errors
``sweep.py``      the image experiments as cached functions of their config; cost (time, memory)
``sentiment.py``  MiniLM on tweets: TF-IDF, frozen probe, full fine-tuning, LoRA (cached runs)
``speaker.py``    a spoken-digit model adapting to a held-out speaker: head, last block, all
================  ===============================================================
"""
