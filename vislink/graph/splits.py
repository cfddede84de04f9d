"""Train / val / test splits by connected component, so that no link crosses two parts (a query's
targets are never in the training data), or imported from a column (Replica's ``set``).

``assign_split`` deals components out greedily, largest first, each to the part furthest below its
target fraction of images; components of equal size are shuffled with the seed first. The result is
deterministic for a seed and every part gets components of every size that has enough of them.

Images in no component (never grouped nor linked) are distractors: they get no part unless
``distractor_part`` names one (then all of them go there, e.g. ``test`` to search among them).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Mapping, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vislink.errors import NotFound, VislinkError
from vislink.graph.build import connected_components
from vislink.store.models import Image, Split, SplitMember, SplitPart

PARTS = tuple(p.value for p in SplitPart)  # train, val, test


def parse_part(value) -> str:
    text = str(value.value if isinstance(value, SplitPart) else value).strip().lower()
    if text not in PARTS:
        raise VislinkError(f"unknown split part {value!r}; use one of {', '.join(PARTS)}")
    return text


def _fractions(fractions: Sequence[float]) -> list[float]:
    values = [float(f) for f in fractions]
    if len(values) != 3 or any(f < 0 for f in values) or sum(values) <= 0:
        raise VislinkError(f"fractions must be three non-negative numbers for train, val, test (got {fractions})")
    total = sum(values)
    return [f / total for f in values]


def deal_components(components: Sequence[Sequence[int]], fractions=(0.5, 0.25, 0.25), seed: int = 0) -> list[str]:
    """The part of each component (same order as given), as described in the module docstring."""
    shares = _fractions(fractions)
    rng = random.Random(seed)
    by_size: dict[int, list[int]] = defaultdict(list)
    for index, component in enumerate(components):
        by_size[len(component)].append(index)
    order: list[int] = []
    for size in sorted(by_size, reverse=True):
        same = sorted(by_size[size], key=lambda i: min(components[i]))  # input order must not matter
        rng.shuffle(same)
        order.extend(same)
    assigned = [0, 0, 0]
    parts = [""] * len(components)
    total = 0
    for index in order:
        total += len(components[index])
        deficits = [share * total - have for share, have in zip(shares, assigned)]
        best = max((k for k in range(3) if shares[k] > 0), key=lambda k: (deficits[k], -k))
        assigned[best] += len(components[index])
        parts[index] = PARTS[best]
    return parts


def get_split(session: Session, collection_id: int, name: str) -> Split:
    split = session.scalar(select(Split).where(Split.collection_id == collection_id, Split.name == name))
    if split is None:
        names = session.scalars(select(Split.name).where(Split.collection_id == collection_id)).all()
        raise NotFound(f"no split {name!r} in this collection; splits: {', '.join(names) or 'none'}")
    return split


def _new_split(session: Session, collection_id: int, name: str, overwrite: bool, **fields) -> Split:
    old = session.scalar(select(Split).where(Split.collection_id == collection_id, Split.name == name))
    if old is not None:
        if not overwrite:
            raise VislinkError(f"split {name!r} already exists; choose another name or overwrite it")
        session.execute(delete(SplitMember).where(SplitMember.split_id == old.id))
        session.delete(old)
        session.flush()
    split = Split(collection_id=collection_id, name=name, **fields)
    session.add(split)
    session.flush()
    return split


def assign_split(session: Session, collection_id: int, name: str = "default",
                 fractions: Sequence[float] = (0.5, 0.25, 0.25), seed: int = 0, *, overwrite: bool = False,
                 distractor_part: str | None = None) -> Split:
    """Split the collection's connected components into train / val / test (see the module docstring)."""
    components = [sorted(c) for c in connected_components(session, collection_id)]
    parts = deal_components(components, fractions, seed)
    shares = _fractions(fractions)
    split = _new_split(session, collection_id, name, overwrite, seed=seed,
                       fractions={**dict(zip(PARTS, shares)), "distractor_part": distractor_part})
    rows = {image_id: part for component, part in zip(components, parts) for image_id in component}
    if distractor_part is not None:
        part = parse_part(distractor_part)
        for image_id in session.scalars(select(Image.id).where(Image.collection_id == collection_id)):
            rows.setdefault(image_id, part)
    session.add_all(SplitMember(split_id=split.id, image_id=i, part=SplitPart(p)) for i, p in sorted(rows.items()))
    session.flush()
    return split


def import_split(session: Session, collection_id: int, name: str, assignments: Mapping[int, str], *,
                 overwrite: bool = False) -> Split:
    """A split given image by image (e.g. an imported ``set`` column)."""
    rows = {int(i): parse_part(p) for i, p in assignments.items()}
    split = _new_split(session, collection_id, name, overwrite, seed=None, fractions={"imported": True})
    session.add_all(SplitMember(split_id=split.id, image_id=i, part=SplitPart(p)) for i, p in sorted(rows.items()))
    session.flush()
    return split


def split_parts(session: Session, split_id: int) -> dict[int, str]:
    """{image id: "train" | "val" | "test"} for every image the split assigns."""
    rows = session.execute(select(SplitMember.image_id, SplitMember.part).where(SplitMember.split_id == split_id))
    return {image_id: SplitPart(part).value for image_id, part in rows}


def split_summary(session: Session, split_id: int) -> dict[str, dict]:
    """Per part: images, components and component sizes; plus ``leaks``, components spread over parts."""
    split = session.get(Split, split_id)
    if split is None:
        raise NotFound(f"no split with id {split_id}")
    parts = split_parts(session, split_id)
    summary = {p: {"images": 0, "components": 0, "sizes": defaultdict(int)} for p in PARTS}
    leaks = 0
    covered: set[int] = set()
    for component in connected_components(session, split.collection_id):
        seen = {parts[i] for i in component if i in parts}
        covered |= component
        if len(seen) > 1:
            leaks += 1
        if len(seen) == 1:
            part = seen.pop()
            summary[part]["components"] += 1
            summary[part]["sizes"][len(component)] += 1
    for part in parts.values():
        summary[part]["images"] += 1
    for entry in summary.values():
        entry["sizes"] = dict(sorted(entry["sizes"].items()))
    summary["leaks"] = {"components": leaks, "distractors": sum(1 for i in parts if i not in covered)}
    return summary
