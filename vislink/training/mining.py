"""Hard negatives and the triplets of an epoch.

Negatives are mined by searching each query image Q (its original) among the training images' originals
with the current model: the highest ranked images that are not linked to Q (not Q itself, not in Q's
connected component of the link graph) are its hard negatives; every annotated negative link of Q is added
to them. ``TrainConfig.mine_every`` says how many epochs a mining serves.

An epoch visits every query once, in an order drawn from (seed, epoch): a self-supervised query (an image
and its transformed views) gives the triplet (original, a view, a negative) or, one time in two, (the view,
the original, a negative): a transformed copy must find its original before any other image, as in the
transformations benchmark; a link query (Q, {T}) gives (Q, one T, a negative). The negative is drawn among
Q's hard and annotated negatives. Triplets depend only on (seed, epoch, negatives), so a resumed epoch
replays exactly the triplets of the interrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vislink.training.data import Dataset
from vislink.training.inputs import Key


@dataclass(frozen=True)
class Triplet:
    query: Key
    target: Key
    negative: Key


def mine_negatives(descriptors: np.ndarray, dataset: Dataset, k: int) -> list[list[int]]:
    """Per train image, the ``k`` most similar train images (cosine, descriptors of the originals, in
    dataset.train order) that are not itself nor related to it, then its annotated negatives."""
    sims = descriptors @ descriptors.T
    out: list[list[int]] = []
    for i in range(len(descriptors)):
        banned = dataset.related.get(i, set()) | {i}
        order = np.argsort(-sims[i], kind="stable")
        hard = [int(j) for j in order[:k + len(banned)] if int(j) not in banned][:k]
        out.append(hard + sorted(set(dataset.annotated.get(i, set())) - set(hard)))
    return out


def epoch_triplets(dataset: Dataset, negatives: list[list[int]], n_views: list[int], *, use_links: bool,
                   use_transforms: bool, seed: int, epoch: int) -> list[Triplet]:
    """The triplets of one epoch (see the module docstring). ``n_views[i]``: views of train image i, the
    original included (indices 1.. are transformed views)."""
    rng = np.random.default_rng([seed, epoch, 1])
    queries: list[tuple[int, tuple[int, ...] | None]] = []
    if use_transforms:
        queries += [(i, None) for i in range(len(dataset.train)) if n_views[i] > 1]
    if use_links:
        queries += [(i, targets) for i, targets in dataset.link_queries]
    triplets = []
    for q in rng.permutation(len(queries)):
        image, targets = queries[q]
        pool = negatives[image]
        if not pool:
            continue
        negative = (int(pool[rng.integers(len(pool))]), 0)
        if targets is None:
            view = (image, int(rng.integers(1, n_views[image])))
            pair = ((image, 0), view) if rng.random() < 0.5 else (view, (image, 0))
        else:
            pair = ((image, 0), (int(targets[rng.integers(len(targets))]), 0))
        triplets.append(Triplet(pair[0], pair[1], negative))
    return triplets


def triplet_loss(query, target, negative, margin: float):
    """The paper's loss on l2-normalised descriptors (rows): mean of max(0, d(Q,T) - d(Q,N) + margin), d the
    Euclidean distance; (loss, d(Q,T), d(Q,N)). The paper prints the two distances the other way round, which
    would push targets away: this is the form that pulls T closer than N by the margin."""
    import torch

    d_pos = torch.sqrt(((query - target) ** 2).sum(dim=1) + 1e-12)
    d_neg = torch.sqrt(((query - negative) ** 2).sum(dim=1) + 1e-12)
    return torch.clamp(d_pos - d_neg + margin, min=0).mean(), d_pos, d_neg
