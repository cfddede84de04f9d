"""Fine-tuning the encoder on annotated links (the paper's triplet training): planned, not built yet.

It will take triplets (query, linked image, hard negative mined from the current ranking) from
``vislink.graph`` and ``vislink.evaluation``, and write checkpoints that ``vislink.encoder`` loads
through a local weights file (``--weights PATH``).
"""
