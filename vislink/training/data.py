"""The training data of a collection, read from the store: which images train, which validate, the link
queries of the train split and the pairs that must never be negatives.

- **Train images**: the split's ``train`` part, plus (``use_unassigned``) the images in no part (distractors:
  never linked, so never anybody's target); never ``val`` or ``test`` images. ``max_images`` keeps a seeded
  sample, linked images first when the run uses link queries.
- **Link queries** (Q, {T}): every train image with confirmed links (group cliques, positive and duplicate
  links) to other train images; T = those images.
- **Self-supervised queries**: every train image, T = its transformed views (``views.plan_views``).
- **Never negatives**: images of the same connected component of the confirmed graph (linked, directly or
  not). **Annotated negatives**: every negative link between two train images, added to the mined ones.
- **Validation**: the ``val`` part's link queries, searched among val + train (+ ``val_distractors`` held-out
  images); and every val / held-out image's transformed views as queries for its original.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from vislink.errors import NotFound, VislinkError
from vislink.training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainImage:
    image_id: int
    ref: str
    path: Path
    sha256: str


@dataclass
class Dataset:
    train: list[TrainImage]
    val: list[TrainImage]  # the split's val part
    held_out: list[TrainImage]  # extra validation gallery images (never trained on)
    link_queries: list[tuple[int, tuple[int, ...]]]  # (train index, linked train indices)
    related: dict[int, set[int]]  # train index -> train indices of the same component (never negatives)
    annotated: dict[int, set[int]]  # train index -> train indices marked as not linked
    val_queries: list[tuple[int, tuple[int, ...]]]  # (index into val, linked indices into val)
    notes: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """What the checkpoint records about the data."""
        return {
            **self.notes,
            "train_images": len(self.train), "val_images": len(self.val), "held_out_images": len(self.held_out),
            "link_queries": len(self.link_queries), "annotated_negative_pairs":
                sum(len(v) for v in self.annotated.values()) // 2,
            "val_link_queries": len(self.val_queries),
            "train_image_ids": [t.image_id for t in self.train],
            "val_image_ids": [t.image_id for t in self.val], "held_out_image_ids": [t.image_id for t in self.held_out],
        }


def load_dataset(config: TrainConfig, db_url: str | None = None) -> Dataset:
    """The training and validation data of ``config.collection`` (see the module docstring)."""
    from vislink.graph import build_graph, connected_components, get_split, negative_pairs, split_parts
    from vislink.store import Image, ImageStatus, get_collection, session_scope

    with session_scope(db_url) as session:
        coll = get_collection(session, config.collection)
        rows = session.execute(select(Image.id, Image.source_ref, Image.file_path, Image.sha256)
                               .where(Image.collection_id == coll.id, Image.status == ImageStatus.done)
                               .order_by(Image.id)).all()
        images = {i: TrainImage(i, ref, Path(fp), sha) for i, ref, fp, sha in rows
                  if fp and sha and Path(fp).is_file()}
        if config.split is None:
            parts = {}
            split_note = "none (every image trains)"
        else:
            split = get_split(session, coll.id, config.split)
            parts = split_parts(session, split.id)
            split_note = config.split
        graph = build_graph(session, coll.id)
        components = connected_components(session, coll.id, graph)
        negatives = negative_pairs(session, coll.id)
    if not images:
        raise NotFound(f"collection {config.collection!r} has no stored image files to train on")
    component_of = {i: k for k, c in enumerate(components) for i in c}
    if config.split is None:
        eligible = sorted(images)
        val_ids: list[int] = []
    else:
        eligible = sorted(i for i in images if parts.get(i) == "train"
                          or (config.use_unassigned and i not in parts))
        val_ids = sorted(i for i in images if parts.get(i) == "val")

    def linked_within(i: int, pool: set[int]) -> tuple[int, ...]:
        return tuple(sorted(n for n in graph.neighbors(i) if n in pool and n != i)) if i in graph else ()

    pool = set(eligible)
    rng = np.random.default_rng(config.seed)
    chosen = eligible
    if config.max_images is not None and len(eligible) > config.max_images:
        linked = [i for i in eligible if linked_within(i, pool)] if config.uses_links else []
        rest = [i for i in eligible if i not in set(linked)]
        room = max(0, config.max_images - len(linked))
        picked = sorted(rng.choice(len(rest), size=min(room, len(rest)), replace=False).tolist()) if room else []
        chosen = sorted(linked[:config.max_images] + [rest[k] for k in picked])
    chosen_set = set(chosen)
    others = [i for i in eligible if i not in chosen_set]
    held_out: list[int] = []
    if config.val_distractors and others:
        k = min(config.val_distractors, len(others))
        held_out = sorted(others[j] for j in rng.choice(len(others), size=k, replace=False).tolist())

    train = [images[i] for i in chosen]
    index_of = {t.image_id: k for k, t in enumerate(train)}
    link_queries = []
    if config.uses_links:
        for k, t in enumerate(train):
            targets = linked_within(t.image_id, chosen_set)
            if targets:
                link_queries.append((k, tuple(index_of[j] for j in targets)))
    related: dict[int, set[int]] = {}
    by_component: dict[int, list[int]] = {}
    for k, t in enumerate(train):
        if t.image_id in component_of:
            by_component.setdefault(component_of[t.image_id], []).append(k)
    for members in by_component.values():
        for k in members:
            related[k] = set(members) - {k}
    annotated: dict[int, set[int]] = {}
    for a, b in negatives:
        if a in index_of and b in index_of:
            annotated.setdefault(index_of[a], set()).add(index_of[b])
            annotated.setdefault(index_of[b], set()).add(index_of[a])

    val = [images[i] for i in val_ids]
    val_index = {t.image_id: k for k, t in enumerate(val)}
    val_set = set(val_ids)
    val_queries = [(val_index[i], tuple(val_index[j] for j in linked_within(i, val_set)))
                   for i in val_ids if linked_within(i, val_set)]
    if config.queries == "links" and not link_queries:
        raise VislinkError(f"collection {config.collection!r}: no train image of split {config.split!r} is linked "
                           f"to another train image, so there are no link queries; train on transformations "
                           f"(queries transforms or both), or import links and assign a split")
    notes = {"collection": config.collection, "split": split_note, "eligible_train_images": len(eligible)}
    log.info("training data of %s: %d train images (%d link queries), %d val (%d queries), %d held out",
             config.collection, len(train), len(link_queries), len(val), len(val_queries), len(held_out))
    return Dataset(train, val, [images[i] for i in held_out], link_queries, related, annotated, val_queries, notes)
