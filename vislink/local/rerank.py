"""Geometric re-ranking of any variant's results: the top K candidates are verified against the query (local
features, RANSAC) and re-ordered: verified candidates first, by inlier count, then the others in their original
order; candidates beyond K keep their places.

Evaluation names a re-ranked variant with a suffix: ``<variant>+verify`` (the default K) or ``<variant>+verifyK``
(e.g. ``vgg16-pool5-sum+verify100``). ``parse_reranked`` is the one place that suffix is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vislink.errors import NotFound
from vislink.local.features import LocalFeatures
from vislink.local.matching import Verification, Verifier

# Candidates verified per query by default: on paintings_linked (84 images) and wga_sample (1,818) every target
# that verification can confirm lies within the first 50 (docs/local.md), and 50 verifications fit in the 1 s
# a query may take on 2 cores.
DEFAULT_VERIFY_TOP = 50
MAX_VERIFY_TOP = 1000
VERIFY_SUFFIX = "+verify"
_SUFFIX = re.compile(r"^(?P<base>.+)\+verify(?P<top>[0-9]*)$")


def parse_reranked(name: str) -> tuple[str, int | None]:
    """``(base variant, K)`` of a variant name: ``vgg16-pool5-sum+verify`` -> (vgg16-pool5-sum, 50),
    ``...+verify100`` -> (..., 100), a name without the suffix -> (name, None)."""
    match = _SUFFIX.match(name)
    if match is None:
        if "+" in name:
            raise NotFound(f"variant {name!r}: the only suffix after '+' is 'verify' or 'verifyK' (geometric "
                           f"re-ranking of the top K, e.g. vgg16-pool5-sum{VERIFY_SUFFIX}{DEFAULT_VERIFY_TOP})")
        return name, None
    top = int(match["top"]) if match["top"] else DEFAULT_VERIFY_TOP
    check_top(top, what=f"variant {name!r}")
    return match["base"], top


def check_top(top: int, *, what: str = "verify top") -> int:
    if not 1 <= int(top) <= MAX_VERIFY_TOP:
        raise NotFound(f"{what}: the number of candidates to verify must be 1..{MAX_VERIFY_TOP}, not {top}")
    return int(top)


@dataclass(frozen=True)
class Reranked:
    """``order``: positions into the candidate list, best first (a permutation of all of them);
    ``verifications``: one per candidate position (None beyond the top K, or when its features were missing)."""

    order: list[int]
    verifications: list[Verification | None]


def rerank(query: LocalFeatures, candidates: Sequence[LocalFeatures | Callable[[], LocalFeatures | None] | None], *,
           top: int = DEFAULT_VERIFY_TOP, verifier: Verifier | None = None) -> Reranked:
    """Verify the first ``top`` candidates (features, or callables giving them, e.g. a cache lookup; None: no
    features, never verified) against ``query`` and re-order them: verified ones first by inlier count (ties keep
    the original order), then the unverified in their original order, then the candidates beyond ``top``."""
    top = check_top(top)
    verifier = verifier or Verifier(query)
    verifications: list[Verification | None] = [None] * len(candidates)
    for i, candidate in enumerate(candidates[:top]):
        features = candidate() if callable(candidate) else candidate
        if features is not None:
            verifications[i] = verifier.verify(features)
    head = list(range(min(top, len(candidates))))
    verified = sorted((i for i in head if verifications[i] is not None and verifications[i].verified),
                      key=lambda i: (-verifications[i].inliers, i))
    chosen = set(verified)
    rest = [i for i in head if i not in chosen]
    return Reranked(verified + rest + list(range(len(head), len(candidates))), verifications)
