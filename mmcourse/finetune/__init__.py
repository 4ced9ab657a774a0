"""Fine-tuning a pretrained model (chapter 08), one idea per file:

================  ===============================================================
``freeze.py``     choosing what trains: freeze all, unfreeze the last k blocks, and
                  optimiser groups with a smaller learning rate for the backbone
``lora.py``       low-rank adapters through ``peft``: add, count, merge
================  ===============================================================
"""
