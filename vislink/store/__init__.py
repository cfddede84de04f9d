"""The SQL store: ORM models and sessions. Schema changes go through ``migrations/`` (Alembic)."""

from vislink.store.db import check_migrated, get_engine, session_scope, upgrade
from vislink.store.lookup import collection_variants, find_collection, get_collection, get_variant
from vislink.store.models import (
    Annotator,
    AuditEvent,
    Base,
    Collection,
    DescriptorVariant,
    EvaluationQueryResult,
    EvaluationRun,
    Group,
    GroupMember,
    Image,
    ImageDescriptor,
    ImageStatus,
    IngestRun,
    Job,
    JobHolder,
    JobState,
    Link,
    LinkProposal,
    LinkType,
    ProposalStatus,
    RunStatus,
    SignInFailure,
    Split,
    SplitMember,
    SplitPart,
)

__all__ = [
    "Annotator", "AuditEvent", "Base", "Collection", "DescriptorVariant", "EvaluationQueryResult",
    "EvaluationRun", "Group", "GroupMember", "Image", "ImageDescriptor", "ImageStatus", "IngestRun", "Job", "JobHolder",
    "JobState", "Link",
    "LinkProposal", "LinkType", "ProposalStatus", "RunStatus", "SignInFailure", "Split", "SplitMember", "SplitPart", "check_migrated", "collection_variants",
    "find_collection", "get_collection", "get_engine", "get_variant", "session_scope", "upgrade",
]
