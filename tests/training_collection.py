"""A tiny collection to fine-tune on (tests only): the demo compositions (each with a re-encoded and a mirrored
copy, grouped) plus a few distractors, ingested with seeded random weights at a small pool5 size, a split
giving two groups to train and two to val, and an annotated negative link.

``python tests/training_collection.py HOME`` builds it in the data folder HOME (the resume test's
subprocess trains on a folder made by the test itself; this entry point is for trying by hand).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

COLLECTION = "ft-demo"
WEIGHTS = "random"
TEST_SIZE = 64  # working size of the training tests (VGG16 costs seconds per image at 256 on 2 cores)


def make_folder(root, n_compositions: int = 4, n_distractors: int = 6):
    from demo_collection import make_images

    demo = make_images(root, n_compositions=n_compositions)
    rng = np.random.default_rng(3)
    for i in range(n_distractors):
        small = Image.fromarray((rng.random((5, 7, 3)) * 255).astype(np.uint8))
        small.resize((140 + 10 * i, 100), Image.Resampling.BICUBIC).save(root / f"distractor{i}.jpg", quality=90)
    return demo


def build(root) -> dict:
    """Ingest ``root`` (made by ``make_folder``) into COLLECTION, group the copies, split, add a negative
    link; returns {file: image id}. Needs settings pointing at a migrated data folder."""
    from sqlalchemy import select

    import vislink.encoder.images as images
    from vislink.graph import assign_split, create_group, set_link
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.store import Image as ImageRow
    from vislink.store import session_scope

    side, images.POOL5_SHORTER_SIDE = images.POOL5_SHORTER_SIDE, 64
    try:
        summary = ingest(COLLECTION, folder_items(root), variants=["vgg16-pool5-sum"], weights=WEIGHTS,
                         progress=False)
    finally:
        images.POOL5_SHORTER_SIDE = side
    assert summary.failed == 0, summary
    with session_scope() as session:
        rows = session.scalars(select(ImageRow).where(ImageRow.source_ref.is_not(None))).all()
        ids = {r.source_ref: r.id for r in rows}
        coll_id = rows[0].collection_id
        works = sorted({ref.split("_")[0].removesuffix(".jpg") for ref in ids if ref.startswith("work")})
        for work in works:
            create_group(session, [i for ref, i in ids.items() if ref.startswith(work)])
        assign_split(session, coll_id, "default", fractions=(0.5, 0.5, 0.0), seed=0)
        set_link(session, ids["distractor0.jpg"], ids["distractor1.jpg"], "negative")
    return ids


if __name__ == "__main__":  # pragma: no cover - by hand
    import sys
    from pathlib import Path

    home = Path(sys.argv[1])
    folder = home / "images-src"
    folder.mkdir(parents=True, exist_ok=True)
    make_folder(folder)
    print(build(folder))
