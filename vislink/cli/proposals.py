"""`vislink proposals ...`: links proposed by nearest-neighbour searches over a whole collection, and their
verdicts (docs/discovery.md)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

proposals_app = typer.Typer(help="Proposed links over a whole collection: build, list, accept, reject, duplicate, "
                                 "undo, stats, export (docs/discovery.md, docs/review.md).",
                            no_args_is_help=True)

COLLECTION = typer.Option(..., "--collection", "-c", help="Collection name.")
ANNOTATOR = typer.Option(None, "--annotator", "-a", help="Who gives the verdict (an annotator name; audited).")
NOTE = typer.Option(None, "--note", help="A note on the link made.")


def _session():
    from vislink.config import get_settings
    from vislink.store import session_scope

    return session_scope(get_settings().database_url)


@proposals_app.command("build")
def build_cmd(
    collection: str = COLLECTION,
    variant: str = typer.Option(..., "--variant", "-v", help="Descriptor variant whose index is searched."),
    k: int = typer.Option(10, "--k", help="Neighbours searched per image (the rule's top k)."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Lowest cosine similarity of a proposed "
                                              "pair (default: measured per variant, 0.75 for vgg16-pool5-sum, 0.5 "
                                              "for sscd-distilled and for variants not measured; docs/discovery.md)."),
    rule: str = typer.Option("mutual", "--rule", help="mutual: each image in the other's top k (the default); "
                             "either: one in the other's top k (more pairs, lower precision; docs/discovery.md)."),
    cross_artist: bool = typer.Option(False, "--cross-artist", help="Only pairs of two different artists."),
    date_order: bool = typer.Option(False, "--date-order", help="Only pairs of which one is dated strictly before "
                                    "the other (the later can copy the earlier); undated images are left out."),
    school: Optional[str] = typer.Option(None, "--school", help="Search among the images of this school only "
                                         "(the catalog's SCHOOL, e.g. Italian; case-insensitive)."),
    form: Optional[str] = typer.Option(None, "--form", help="Search among the images of this form only (the "
                                       "catalog's FORM, e.g. painting; case-insensitive)."),
    verify: bool = typer.Option(False, "--verify", help="Only pairs verified geometrically by local features."),
    detach: bool = typer.Option(False, "--detach", help="When `vislink ui` or `vislink worker --embedded` holds the "
                                "index (the build is queued for it as a job): return at once instead of following it."),
) -> None:
    """Propose links: pairs of nearest neighbours above --min-score that the graph does not answer yet
    (replaces the variant's open proposals; verdicts are kept)."""
    from vislink.cli.jobs import run_here_or_queue
    from vislink.evaluation.proposals import build_proposals

    arguments = {"collection": collection, "variant": variant, "k": k, "min_score": min_score, "rule": rule,
                 "cross_artist": cross_artist, "date_order": date_order, "school": school, "form": form,
                 "verify": verify}

    def here() -> None:
        report = build_proposals(collection, variant, k=k, min_score=min_score, rule=rule, cross_artist=cross_artist,
                                 date_order=date_order, school=school, form=form, verify=verify)
        typer.echo(report.summary())

    run_here_or_queue("proposals-build", arguments, here, detach=detach)


@proposals_app.command("list")
def list_cmd(
    collection: str = COLLECTION,
    status: str = typer.Option("open", "--status", help="open, accepted, rejected, duplicate or all."),
    variant: Optional[str] = typer.Option(None, "--variant", "-v", help="Only this variant's proposals."),
    order: str = typer.Option("score", "--order", help="score (best first), uncertain (closest to the score the "
                              "verdicts so far put the boundary at: the active-learning order, docs/review.md) or "
                              "newest."),
    limit: int = typer.Option(50, "--limit", help="At most this many."),
    offset: int = typer.Option(0, "--offset", help="Skip this many first (the next page)."),
) -> None:
    """Proposals, best score first (or --order uncertain / newest)."""
    from vislink.graph.proposals import list_proposals
    from vislink.store import get_collection

    with _session() as session:
        rows = list_proposals(session, get_collection(session, collection).id,
                              status=None if status == "all" else status, variant=variant, limit=limit,
                              order=order, offset=offset)
        if not rows:
            typer.echo("no proposals")
        for p in rows:
            typer.echo(f"{p.id:6}  {p.status:9} {p.score:.3f}  rank {p.rank:<3} {p.variant}  "
                       f"{p.ref_a}  <->  {p.ref_b}")


VERDICT_LINKS = {"accepted": "positive", "rejected": "negative", "duplicate": "duplicate"}


def _decide(ids: List[int], collection: str, annotator: str | None, note: str | None, verdict: str,
            join_group: bool = False) -> None:
    from vislink.graph.annotators import get_annotator
    from vislink.graph.proposals import accept_proposal, duplicate_proposal, reject_proposal
    from vislink.store import ProposalStatus, get_collection

    decide = {"accepted": accept_proposal, "rejected": reject_proposal, "duplicate": duplicate_proposal}[verdict]
    with _session() as session:
        coll_id = get_collection(session, collection).id
        annotator_id = get_annotator(session, annotator).id if annotator else None
        for pid in ids:
            extra = {"join_group": join_group} if verdict != "rejected" else {}
            p = decide(session, pid, annotator_id=annotator_id, note=note, collection_id=coll_id, **extra)
            typer.echo(f"proposal {pid}: {ProposalStatus(p.status).value} (link {p.link_id}, {VERDICT_LINKS[verdict]})")


GROUP = typer.Option(False, "--group", help="Also put the two in one group (a new one, the other's, or their two "
                                            "groups merged).")


@proposals_app.command("accept")
def accept_cmd(ids: List[int] = typer.Argument(..., help="Proposal ids."), collection: str = COLLECTION,
               annotator: Optional[str] = ANNOTATOR, note: Optional[str] = NOTE, group: bool = GROUP) -> None:
    """Accept proposals: each pair becomes a positive link."""
    _decide(ids, collection, annotator, note, "accepted", join_group=group)


@proposals_app.command("reject")
def reject_cmd(ids: List[int] = typer.Argument(..., help="Proposal ids."), collection: str = COLLECTION,
               annotator: Optional[str] = ANNOTATOR, note: Optional[str] = NOTE) -> None:
    """Reject proposals: each pair becomes a negative link (a hard negative for fine-tuning)."""
    _decide(ids, collection, annotator, note, "rejected")


@proposals_app.command("duplicate")
def duplicate_cmd(ids: List[int] = typer.Argument(..., help="Proposal ids."), collection: str = COLLECTION,
                  annotator: Optional[str] = ANNOTATOR, note: Optional[str] = NOTE, group: bool = GROUP) -> None:
    """Mark proposals as the same work twice (a duplicate reproduction): each pair becomes a duplicate link."""
    _decide(ids, collection, annotator, note, "duplicate", join_group=group)


@proposals_app.command("undo")
def undo_cmd(proposal_id: int = typer.Argument(..., help="Proposal id."), collection: str = COLLECTION,
             annotator: str = typer.Option(..., "--annotator", "-a", help="Whose verdict is taken back (their last "
                                           "edit must be this verdict).")) -> None:
    """Take back a verdict: the link (and a group it made or joined) as before, the proposal open again."""
    from vislink.graph.annotators import get_annotator
    from vislink.graph.proposals import undo_verdict
    from vislink.store import get_collection

    with _session() as session:
        p = undo_verdict(session, proposal_id, annotator_id=get_annotator(session, annotator).id,
                         collection_id=get_collection(session, collection).id)
        typer.echo(f"proposal {p.id}: open again")


@proposals_app.command("stats")
def stats_cmd(collection: str = COLLECTION,
              variant: Optional[str] = typer.Option(None, "--variant", "-v", help="Only this variant.")) -> None:
    """Review progress: open / decided, verdicts per annotator, and each variant's decision boundary."""
    from sqlalchemy import select

    from vislink.graph.proposals import decision_boundary, proposal_counts
    from vislink.store import LinkProposal, get_collection

    with _session() as session:
        coll_id = get_collection(session, collection).id
        counts = proposal_counts(session, coll_id, variant=variant)
        typer.echo(f"{counts.left} open, {counts.done} decided ("
                   + ", ".join(f"{n} {s}" for s, n in counts.by_status.items() if s != "open") + ")")
        for who, by in sorted(counts.by_annotator.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
            verdicts = ", ".join(f"{n} {s}" for s, n in sorted(by.items()) if n and s != "open")
            if verdicts:
                typer.echo(f"  {who or '(no annotator)'}: {verdicts}")
        variants = [variant] if variant else sorted(set(session.scalars(
            select(LinkProposal.variant_name).where(LinkProposal.collection_id == coll_id).distinct())))
        for name in variants:
            b = decision_boundary(session, coll_id, name)
            typer.echo(f"  {name}: boundary {b.score:.3f} ({b.source}; {b.n_positive} positive, "
                       f"{b.n_negative} rejected verdicts)")


@proposals_app.command("export")
def export_cmd(file: Path = typer.Argument(..., help="CSV file to write."), collection: str = COLLECTION,
               status: str = typer.Option("all", "--status", help="open, accepted, rejected, duplicate or all.")) -> None:
    """Export proposals as CSV (cells a spreadsheet would run as formulas are escaped)."""
    from vislink.graph.proposals import export_proposals
    from vislink.store import get_collection

    with _session() as session:
        n = export_proposals(session, get_collection(session, collection).id, file,
                             status=None if status == "all" else status)
    typer.echo(f"{n} proposals written to {file}")


def register(app: typer.Typer) -> None:
    app.add_typer(proposals_app, name="proposals")
