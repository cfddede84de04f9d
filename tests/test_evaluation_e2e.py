"""End to end through the other stages: images ingested by the pipeline into the embedded index, groups made
with the graph's edits, a split imported; the collection evaluation must agree with the groups benchmark on
the same files (Qdrant search path and in-memory path give the same ranks)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def linked_folder(tmp_path):
    """Twelve real images: three groups (a picture and re-encoded / resized copies of it) and five
    distractors; never byte-identical, so ingest keeps each one."""
    from PIL import Image

    rng = np.random.default_rng(5)
    root = tmp_path / "linked"
    root.mkdir()
    groups = {}
    for g, size in (("g1", 3), ("g2", 2), ("g3", 2)):
        base = Image.fromarray((rng.random((48, 64, 3)) * 255).astype("uint8"))
        for k in range(size):
            name = f"{g}_{k}.jpg"
            base.resize((64 - 4 * k, 48 - 3 * k)).save(root / name, quality=95 - 5 * k)
            groups[name] = g
    for i in range(5):
        Image.fromarray((rng.random((40 + 4 * i, 60, 3)) * 255).astype("uint8")).save(root / f"d{i}.jpg")
        groups[f"d{i}.jpg"] = ""
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,group\n" + "".join(f"linked/{f},{g}\n" for f, g in sorted(groups.items())))
    return root, manifest, groups


def test_collection_evaluation_agrees_with_the_groups_benchmark(linked_folder, vislink_env):
    from sqlalchemy import select

    from vislink.evaluation.gallery import encode_gallery, evaluate_gallery
    from vislink.evaluation.groups import read_manifest
    from vislink.evaluation.runner import evaluate_collection
    from vislink.graph.edits import create_group
    from vislink.graph.splits import import_split
    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.store import session_scope
    from vislink.store.models import Collection, Image

    root, manifest, groups = linked_folder
    variant = "vgg16-pool5-sum"
    summary = ingest("linked", folder_items(root), variants=[variant], weights="random-0", progress=False)
    assert summary.done == 12 and summary.failed == 0
    with session_scope(vislink_env.database_url) as session:
        coll = session.scalar(select(Collection).where(Collection.name == "linked"))
        ids = {img.source_ref: img.id for img in session.scalars(select(Image).where(Image.collection_id == coll.id))}
        assert len(ids) == 12
        for g in ("g1", "g2", "g3"):
            create_group(session, [ids[f] for f, gg in groups.items() if gg == g])
        # g1 and g3 are test images, g2 is train (its images are searched but never queries)
        import_split(session, coll.id, "default",
                     {i: ("train" if ref.startswith("g2") else "test") for ref, i in ids.items()})

    split_report = evaluate_collection("linked", variant, progress=False)
    assert sorted(r.query.ref for r in split_report.results) == ["g1_0.jpg", "g1_1.jpg", "g1_2.jpg",
                                                                "g3_0.jpg", "g3_1.jpg"]
    assert split_report.n_gallery == 12 and split_report.weights_sha256

    everyone = evaluate_collection("linked", variant, split=None, progress=False, store=False)
    gallery = read_manifest(manifest)
    bench = evaluate_gallery(gallery, encode_gallery(gallery, [variant], weights="random-0", progress=False))[0]
    assert everyone.n_queries == bench.n_queries == 7
    by_ref = {r.query.ref: sorted(r.ranks) for r in everyone.results}
    for r in bench.results:
        assert by_ref[r.query.ref.removeprefix("linked/")] == sorted(r.ranks), r.query.ref
    assert everyone.metrics == pytest.approx(bench.metrics)
