"""SQL models (SQLAlchemy 2 typed ORM). The schema itself is created only by Alembic migrations
(``migrations/``); a test checks that these models and the migrations agree."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names, so that migrations can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class ImageStatus(str, enum.Enum):
    pending = "pending"
    done = "done"
    failed = "failed"
    duplicate = "duplicate"  # same bytes as another image of the collection: stored once


class LinkType(str, enum.Enum):
    positive = "positive"
    negative = "negative"
    duplicate = "duplicate"
    proposal = "proposal"


class ProposalStatus(str, enum.Enum):
    open = "open"  # waiting for a verdict; a rebuild replaces these
    accepted = "accepted"  # became a positive link
    rejected = "rejected"  # became a negative link
    # The same work reproduced twice (Review page's "Duplicate"): a duplicate link. Stored as VARCHAR(16) without
    # a CHECK constraint (``_enum``: SQLAlchemy 2 creates none for non-native enums), so no migration adds it.
    duplicate = "duplicate"


class SplitPart(str, enum.Enum):
    train = "train"
    val = "val"
    test = "test"


class RunStatus(str, enum.Enum):
    running = "running"
    finished = "finished"
    failed = "failed"
    interrupted = "interrupted"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: portable between SQLite and PostgreSQL,
    # and no PostgreSQL ENUM type to migrate when a value is added.
    return Enum(cls, name=name, native_enum=False, length=16, validate_strings=True)


class Collection(Base):
    """A named set of images from one source (a folder, the WGA catalog, IIIF manifests...)."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    source_kind: Mapped[str | None] = mapped_column(String(40))
    source_ref: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    variants: Mapped[list[DescriptorVariant]] = relationship(back_populates="collection", cascade="all, delete-orphan")


class DescriptorVariant(Base):
    """One kind of descriptor computed for a collection, stored in its own Qdrant collection."""

    __tablename__ = "descriptor_variants"
    __table_args__ = (UniqueConstraint("collection_id", "name", name="uq_descriptor_variants_collection_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))  # e.g. vgg16-pool5-sp2x2-sum-pca1024
    backbone: Mapped[str] = mapped_column(String(40), default="vgg16")
    weights_name: Mapped[str] = mapped_column(String(200))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    layer: Mapped[str] = mapped_column(String(20))  # pool5 | fc6
    pooling: Mapped[str] = mapped_column(String(20))  # max | sum | sp2x2-sum | none
    resize_rule: Mapped[str] = mapped_column(String(40))  # shorter-256 | crop-224 | warp-224
    pca_dim: Mapped[int | None] = mapped_column(Integer)
    pca_path: Mapped[str | None] = mapped_column(Text)
    pca_sha256: Mapped[str | None] = mapped_column(String(64))
    dimension: Mapped[int] = mapped_column(Integer)
    qdrant_collection: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    collection: Mapped[Collection] = relationship(back_populates="variants")


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("collection_id", "source_ref", name="uq_images_collection_source"),
        UniqueConstraint("collection_id", "sha256", name="uq_images_collection_sha256"),
        Index("ix_images_collection_status", "collection_id", "status"),
        Index("ix_images_artist", "artist"),
        Index("ix_images_years", "year_start", "year_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    sha256: Mapped[str | None] = mapped_column(String(64))  # known once fetched
    source_ref: Mapped[str] = mapped_column(Text)  # path relative to a folder, URL, or IIIF id
    file_path: Mapped[str | None] = mapped_column(Text)  # in the data folder's content-addressed store
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[ImageStatus] = mapped_column(_enum(ImageStatus, "image_status"), default=ImageStatus.pending)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"), index=True)

    artist: Mapped[str | None] = mapped_column(String(300))
    artist_dates: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(Text)
    date_text: Mapped[str | None] = mapped_column(String(100))
    year_start: Mapped[int | None] = mapped_column(Integer)
    year_end: Mapped[int | None] = mapped_column(Integer)
    technique: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    form: Mapped[str | None] = mapped_column(String(60), index=True)
    type: Mapped[str | None] = mapped_column(String(60))
    school: Mapped[str | None] = mapped_column(String(60))
    timeframe: Mapped[str | None] = mapped_column(String(40))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    collection: Mapped[Collection] = relationship()


class ImageDescriptor(Base):
    """Which image has a point in which variant's Qdrant collection: what `reconcile` compares."""

    __tablename__ = "image_descriptors"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("descriptor_variants.id", ondelete="CASCADE"),
                                            primary_key=True, index=True)
    encoded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Annotator(Base):
    __tablename__ = "annotators"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # bcrypt (salted); None: OIDC-only
    email: Mapped[str | None] = mapped_column(String(300))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SignInFailure(Base):
    """Failed password sign-ins per account name (known or not: a lock must not tell names apart), so that
    guessing is throttled across reruns, browser sessions and UI processes (``graph.annotators.sign_in``).
    Times are POSIX seconds."""

    __tablename__ = "sign_in_failures"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # as typed, stripped and lower-cased
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive, since the last success
    last_failure_at: Mapped[float] = mapped_column(Float)
    locked_until: Mapped[float | None] = mapped_column(Float)


class Group(Base):
    """An annotated cluster of linked images (a clique in the link graph)."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    # What the group is called wherever it is shown ("Leonardo da Vinci, Mona Lisa"): editable, defaulted from
    # the members' common artist and title when a group is made or imported without one (migration 0004).
    title: Mapped[str | None] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(200))  # group id in an imported file
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic concurrency
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("annotators.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}

    members: Mapped[list[GroupMember]] = relationship(back_populates="group", cascade="all, delete-orphan")


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    # An image belongs to at most one group: the database enforces it, so that two annotators adding the
    # same image to two groups at the same moment cannot both succeed.
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, index=True,
                                          unique=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("annotators.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    group: Mapped[Group] = relationship(back_populates="members")


class Link(Base):
    """A typed link between two images, stored once per unordered pair (image_a_id < image_b_id)."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("image_a_id", "image_b_id", name="uq_links_pair"),
        CheckConstraint("image_a_id < image_b_id", name="ordered_pair"),
        Index("ix_links_image_b", "image_b_id"),
        Index("ix_links_type", "type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_a_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    image_b_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    type: Mapped[LinkType] = mapped_column(_enum(LinkType, "link_type"))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("annotators.id", ondelete="SET NULL"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class LinkProposal(Base):
    """A pair of images proposed as a visual link by ``vislink proposals build`` (docs/discovery.md): its score,
    rank and variant, and the verdict once given (the verdict itself is a positive or negative ``Link``). One
    proposal per unordered pair (image_a_id < image_b_id); a rebuild replaces the open ones only."""

    __tablename__ = "link_proposals"
    __table_args__ = (
        UniqueConstraint("image_a_id", "image_b_id", name="uq_link_proposals_pair"),
        CheckConstraint("image_a_id < image_b_id", name="ordered_pair"),
        Index("ix_link_proposals_collection_status", "collection_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    image_a_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    image_b_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    variant_name: Mapped[str] = mapped_column(String(120))
    score: Mapped[float] = mapped_column(Float)  # cosine similarity of the two descriptors
    rank: Mapped[int] = mapped_column(Integer)  # the worse of the two ranks (each in the other's top k)
    status: Mapped[ProposalStatus] = mapped_column(_enum(ProposalStatus, "proposal_status"),
                                                   default=ProposalStatus.open)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("annotators.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    """Every change to groups and links: who, when, what before and after (for undo)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_annotator_at", "annotator_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("annotators.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))  # group | link | member
    entity_id: Mapped[int | None] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    undone: Mapped[bool] = mapped_column(Boolean, default=False)


class Split(Base):
    """A train/val/test assignment of images, by connected component (or imported)."""

    __tablename__ = "splits"
    __table_args__ = (UniqueConstraint("collection_id", "name", name="uq_splits_collection_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    seed: Mapped[int | None] = mapped_column(Integer)
    fractions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SplitMember(Base):
    __tablename__ = "split_members"

    split_id: Mapped[int] = mapped_column(ForeignKey("splits.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, index=True)
    part: Mapped[SplitPart] = mapped_column(_enum(SplitPart, "split_part"))


class IngestRun(Base):
    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    source_kind: Mapped[str] = mapped_column(String(40))
    source_ref: Mapped[str | None] = mapped_column(Text)
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "run_status"), default=RunStatus.running)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    n_done: Mapped[int] = mapped_column(Integer, default=0)
    n_skipped: Mapped[int] = mapped_column(Integer, default=0)
    n_failed: Mapped[int] = mapped_column(Integer, default=0)
    failures_by_reason: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EvaluationRun(Base):
    __tablename__ = "evaluation_runs"
    __table_args__ = (Index("ix_evaluation_runs_variant_at", "variant_name", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("descriptor_variants.id", ondelete="SET NULL"))
    variant_name: Mapped[str] = mapped_column(String(120))
    benchmark: Mapped[str | None] = mapped_column(String(120))  # e.g. replica-wga, groups:<manifest>
    weights_sha256: Mapped[str | None] = mapped_column(String(64))
    split_name: Mapped[str | None] = mapped_column(String(100))
    code_version: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    n_queries: Mapped[int] = mapped_column(Integer, default=0)
    n_gallery: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"R@20": 0.48, "mAP": ...}
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EvaluationQueryResult(Base):
    """The rank of every target of one query (the paper's Table 2)."""

    __tablename__ = "evaluation_query_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"), index=True)
    query_image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"))
    query_ref: Mapped[str | None] = mapped_column(Text)
    n_targets: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)
    average_precision: Mapped[float | None] = mapped_column(Float)
    target_ranks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # 1-based; null when beyond the cutoff


class JobState(str, enum.Enum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


class Job(Base):
    """Long work (an ingest, add-variant, an evaluation) or a short request (a search while the index is held)
    kept in the store, whoever asked for it, run by a holder (``vislink.store.jobs``, docs/jobs.md)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_kind", "state", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # ingest | add-variant | evaluate | search | index-info
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"), default=JobState.queued)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"done": .., "skipped": .., "failed": ..}
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[source_ref, reason], ...], first ones
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)  # why it failed, or what it is doing
    requested_by: Mapped[str | None] = mapped_column(String(200))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims: > 1 when taken again from a dead holder
    holder_host: Mapped[str | None] = mapped_column(String(200))
    holder_pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JobHolder(Base):
    """A process that runs jobs (``vislink ui``, ``vislink worker --embedded``), with its heartbeat: what a
    command that finds the embedded index held asks before queueing work for it."""

    __tablename__ = "job_holders"

    host: Mapped[str] = mapped_column(String(200), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(40))  # ui | worker
    index_location: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
