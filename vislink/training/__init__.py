"""Fine-tuning VGG16 the paper's way: triplets (Q, T, N) from the annotated links of the train split and
from self-supervised link-like transformations, hard negatives mined with the current model, the margin loss
on l2-normalised descriptors, validation on the val split every epoch, the best checkpoint kept, resumable.
The product is a VGG16 weights file ``ft:<run>`` that the encoder loads like any other weights, and the
descriptor variants pinned to it (``vgg16-pool5-sum@ft:<run>``...). See docs/training.md.

```python
from vislink.training import TrainConfig, finetune

result = finetune(TrainConfig(name="wga-ss1", collection="wga", queries="transforms", epochs=5))
result.variants            # ["vgg16-pool5-sum@ft:wga-ss1", "vgg16-pool5-max@ft:wga-ss1", ...]
result.history[0]          # validation of the base weights; then one record per epoch
```

Names are re-exported lazily: ``import vislink.training`` does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "vislink.training.config",
    "CUTS": "vislink.training.config",
    "DEFAULT_TRANSFORMS": "vislink.training.config",
    "finetune": "vislink.training.trainer",
    "FinetuneResult": "vislink.training.trainer",
    "finetuned_variants": "vislink.training.trainer",
    "batch_loss": "vislink.training.trainer",
    "build_catalog": "vislink.training.trainer",
    "make_inputs": "vislink.training.trainer",
    "remove_run": "vislink.training.trainer",
    "load_dataset": "vislink.training.data",
    "Dataset": "vislink.training.data",
    "Network": "vislink.training.network",
    "Triplet": "vislink.training.mining",
    "triplet_loss": "vislink.training.mining",
    "mine_negatives": "vislink.training.mining",
    "epoch_triplets": "vislink.training.mining",
    "View": "vislink.training.views",
    "plan_views": "vislink.training.views",
    "CachedInputs": "vislink.training.inputs",
    "PixelInputs": "vislink.training.inputs",
    "ViewCatalog": "vislink.training.inputs",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vislink.training' has no attribute {name!r}")
