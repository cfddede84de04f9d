"""Finding a collection and its descriptor variants by the names people type: written once, with one error
message, for every stage (ingest, search, graph, evaluation, UI and CLI)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from vislink.errors import NotFound
from vislink.store.models import Collection, DescriptorVariant

LISTED_NAMES = 20  # how many existing collection names an error message lists


def find_collection(session: Session, name: str) -> Collection | None:
    """The collection named ``name``, or None."""
    return session.scalar(select(Collection).where(Collection.name == name))


def get_collection(session: Session, name: str) -> Collection:
    """The collection named ``name``; ``NotFound`` naming the existing ones otherwise."""
    coll = find_collection(session, name)
    if coll is None:
        names = session.scalars(select(Collection.name).order_by(Collection.name)).all()
        known = ", ".join(names[:LISTED_NAMES]) + (", ..." if len(names) > LISTED_NAMES else "")
        raise NotFound(f"unknown collection {name!r}; collections: {known or 'none yet (ingest one first)'}")
    return coll


def collection_variants(session: Session, coll: Collection | int) -> list[DescriptorVariant]:
    """A collection's descriptor variants in the order they were added (the first is the default)."""
    coll_id = coll if isinstance(coll, int) else coll.id
    return list(session.scalars(select(DescriptorVariant).where(DescriptorVariant.collection_id == coll_id)
                                .order_by(DescriptorVariant.id)))


def get_variant(session: Session, coll: Collection, name: str | None = None) -> DescriptorVariant:
    """The variant ``name`` of ``coll`` (None: its first, the default); ``NotFound`` naming the ones it has."""
    variants = collection_variants(session, coll)
    if not variants:
        raise NotFound(f"collection {coll.name!r} has no descriptor variant yet (ingest images first)")
    if name is None:
        return variants[0]
    for v in variants:
        if v.name == name:
            return v
    raise NotFound(f"collection {coll.name!r} has no variant {name!r}; its variants: {', '.join(v.name for v in variants)}")
