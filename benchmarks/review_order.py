"""What the Review page's queries cost on a large ``link_proposals`` table (issue #19 item 2, docs/review.md):
``decision_boundary``, the next proposal in each order (``list_proposals(limit=1)``) and ``proposal_counts``,
on N proposals of one variant with a share of them decided (half accepted, half rejected).

    python benchmarks/review_order.py                          # 100,000 proposals, SQLite in a temporary folder
    python benchmarks/review_order.py --n 20000 --runs 3
    python benchmarks/review_order.py --db postgresql://postgres@127.0.0.1:5432/bench   # an empty database

Rows are inserted in bulk (SQL core), scores uniform in [0.5, 1); the timings are the median of ``--runs`` calls
in one session each, as the page makes them. One Markdown row per query.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANT = "vgg16-pool5-sum"


def fill(url: str, n: int, decided: float, seed: int) -> int:
    from sqlalchemy import insert, select

    from vislink.store import Collection, Image, LinkProposal, session_scope

    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.5, 1.0, n)
    with session_scope(url) as s:
        coll = Collection(name="bench-review")
        s.add(coll)
        s.flush()
        cid = coll.id
        s.execute(insert(Image), [{"collection_id": cid, "source_ref": f"img{i}.jpg"} for i in range(2 * n)])
        ids = sorted(s.scalars(select(Image.id).where(Image.collection_id == cid)))
        n_decided = int(n * decided)
        status = ["accepted" if i % 2 == 0 else "rejected" for i in range(n_decided)] + ["open"] * (n - n_decided)
        order = rng.permutation(n)
        s.execute(insert(LinkProposal), [
            {"collection_id": cid, "image_a_id": ids[2 * i], "image_b_id": ids[2 * i + 1], "variant_name": VARIANT,
             # decided ones: accepted above 0.8, rejected below, so that the boundary is near 0.8
             "score": float(0.8 + scores[i] / 5 - 0.1 if status[order[i]] == "accepted" else
                            0.8 - scores[i] / 5 + 0.1 if status[order[i]] == "rejected" else scores[i]),
             "rank": 1, "status": status[order[i]]} for i in range(n)])
    return cid


def timed(url: str, runs: int, fn) -> tuple[float, object]:
    from vislink.store import session_scope

    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        with session_scope(url) as s:
            result = fn(s)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="proposals (default 100,000)")
    parser.add_argument("--decided", type=float, default=0.01, help="share decided (default 0.01)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", help="an empty database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from vislink.graph.proposals import decision_boundary, list_proposals, proposal_counts
    from vislink.store import db

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        db.upgrade(url)
        start = time.perf_counter()
        cid = fill(url, args.n, args.decided, args.seed)
        print(f"{args.n:,} proposals ({args.decided:.0%} decided) on {url.split(':', 1)[0]}, filled in "
              f"{time.perf_counter() - start:.1f} s; median of {args.runs} runs")
        print("| query | ms | result |\n| --- | ---: | --- |")
        rows = [
            ("decision_boundary", lambda s: decision_boundary(s, cid, VARIANT)),
            ("list_proposals(order='uncertain', limit=1)",
             lambda s: list_proposals(s, cid, variant=VARIANT, order="uncertain", limit=1)),
            ("list_proposals(order='score', limit=1)",
             lambda s: list_proposals(s, cid, variant=VARIANT, order="score", limit=1)),
            ("list_proposals(order='newest', limit=1)",
             lambda s: list_proposals(s, cid, variant=VARIANT, order="newest", limit=1)),
            ("proposal_counts", lambda s: proposal_counts(s, cid, variant=VARIANT)),
        ]
        for name, fn in rows:
            seconds, result = timed(url, args.runs, fn)
            if isinstance(result, list):
                result = f"#{result[0].id} score {result[0].score:.3f}" if result else "none"
            elif hasattr(result, "score"):
                result = f"{result.score:.3f} from {result.source}"
            else:
                result = f"left {result.left}, done {result.done}"
            print(f"| {name} | {seconds * 1000:.1f} | {result} |")
        db.get_engine(url).dispose()


if __name__ == "__main__":
    main()
