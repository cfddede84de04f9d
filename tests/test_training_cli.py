"""`vislink finetune` end to end: train on a tiny collection, encode the collection with the pinned fine-tuned
variant next to its base variant (`collection add-variant`), evaluate both in one table (`vislink evaluate`),
and measure both with `vislink benchmark transforms --collection`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from training_collection import COLLECTION, TEST_SIZE, WEIGHTS, build, make_folder


@pytest.fixture
def trained(vislink_env, tmp_path, monkeypatch):
    from vislink.cli import app
    from vislink.encoder.model import clear_encoders

    monkeypatch.setattr("vislink.encoder.images.POOL5_SHORTER_SIDE", TEST_SIZE)
    src = tmp_path / "src"
    src.mkdir()
    make_folder(src)
    build(src)
    result = CliRunner().invoke(app, ["finetune", "--collection", COLLECTION, "--name", "cli", "--weights", WEIGHTS,
                                      "--size", str(TEST_SIZE), "--views", "2", "--epochs", "1", "--lr", "1e-2",
                                      "--queries", "both", "--no-progress"])
    assert result.exit_code == 0, result.output
    yield result.output
    clear_encoders()


def check_printed_epochs_and_variants(trained: str) -> None:
    assert "epoch 0 (base weights)" in trained and "epoch 1; loss" in trained
    assert "val links R@20" in trained and "val transforms top1" in trained
    assert "weights ft:cli" in trained
    assert "vgg16-pool5-sum@ft:cli, vgg16-pool5-max@ft:cli, vgg16-pool5-sp2x2-sum@ft:cli" in trained
    assert f"vislink collection add-variant {COLLECTION} vgg16-pool5-sum@ft:cli" in trained


def test_a_collection_holds_base_and_finetuned_variants_evaluated_side_by_side(trained, vislink_env):
    """One training run (the fixture's) for everything: what `vislink finetune` printed, then the collection."""
    from sqlalchemy import select

    from vislink.cli import app
    from vislink.encoder.variants import parse_variant
    from vislink.errors import ConflictError
    from vislink.ingest.collections import variant_weights
    from vislink.store import DescriptorVariant, collection_variants, get_collection, session_scope

    check_printed_epochs_and_variants(trained)
    runner = CliRunner()
    result = runner.invoke(app, ["collection", "add-variant", COLLECTION, "vgg16-pool5-sum@ft:cli", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"Qdrant collection vislink_{COLLECTION}_vgg16-pool5-sum_ft_cli" in result.output
    with session_scope() as session:
        rows = {v.name: (v.weights_name, v.qdrant_collection) for v in session.scalars(select(DescriptorVariant))}
        coll = get_collection(session, COLLECTION)
        existing = sorted(collection_variants(session, coll), key=lambda v: "@" not in v.name)  # pinned first
        # A pinned variant does not set the collection's VGG16 weights: a new unpinned one gets the base's...
        assert variant_weights(parse_variant("vgg16-pool5-max"), existing, None, vislink_env,
                               COLLECTION).name == WEIGHTS
        # ...and the one-weights rule still holds for unpinned variants.
        with pytest.raises(ConflictError, match="was encoded with weights"):
            variant_weights(parse_variant("vgg16-pool5-max"), existing, "ft:cli", vislink_env, COLLECTION)
    assert rows["vgg16-pool5-sum"][0] == WEIGHTS and rows["vgg16-pool5-sum@ft:cli"][0] == "ft:cli"

    result = runner.invoke(app, ["evaluate", "--collection", COLLECTION, "--part", "val", "--no-progress",
                                 "--out", str(vislink_env.reports_dir)])
    assert result.exit_code == 0, result.output
    table = [line for line in result.output.splitlines() if line.startswith("vgg16-pool5-sum")]
    assert [line.split()[0] for line in table] == ["vgg16-pool5-sum", "vgg16-pool5-sum@ft:cli"]

    result = runner.invoke(app, ["benchmark", "transforms", "--collection", COLLECTION, "--transforms",
                                 "mirror,grayscale", "--no-progress", "--out", str(vislink_env.reports_dir)])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith("vgg16-pool5-sum")]
    assert [(r[0], r[1]) for r in rows] == [(v, t) for v in ("vgg16-pool5-sum", "vgg16-pool5-sum@ft:cli")
                                            for t in ("mirror", "grayscale", "all")]
    assert all(r[-1] == ("36" if r[1] == "all" else "18") for r in rows)  # 18 images, 2 transformations
