"""Banded LSH over MinHash signatures: which pairs of records are worth an exact Jaccard (SPEC section 2).

The signature is cut into ``bands`` bands of ``rows`` values; each band becomes one uint64 key
(``minhash.band_keys``). Per band the records are sorted by key and records with equal keys form a bucket;
the pairs inside a bucket collide. A pair at Jaccard J collides in one band with probability J**rows and in
at least one with 1 - (1 - J**rows)**bands (0.9997 at J = 0.85 for 32 x 8).

Template-heavy text defeats the plain scheme: every outpatient record of a disease shares its examination
sentences, so buckets fill with moderately similar records (J 0.4-0.65) whose pairs grow with the square of
the corpus (641 million colliding pairs among 684,758 synthetic records, most of them in buckets of hundreds
to thousands of records whose eight minima are all template n-grams). Two measures keep the work near-linear:

- Sketch test. A colliding pair is handed on only when bit 0 of its signature values (``sketch_planes``)
  agrees in enough slots: a slot agrees with probability p(J) = J + (1 - J) / 2; ``min_agreement`` takes the
  binomial quantile at J = threshold so a pair at exactly the threshold is dropped with probability at most
  ``miss`` (more similar pairs less often). ``sketch_filter`` then applies the same test to 4 bits per slot.
- Giant buckets. A bucket of more than ``max_bucket`` records is not expanded into all its pairs: each member
  is paired with the bucket's ``anchors`` members of smallest content rank (a hash of the signature, so the
  choice does not depend on input order). A flood of near-copies still links up through the anchors; a true
  duplicate pair inside a template bucket collides in about ten bands, and the bench measures how often all
  of them are giant (recall on planted pairs).

It does not know about texts, ids or exact Jaccard (``verify.py``).
Example: ``pairs = bucket_pairs(keys[0], planes[0], rank, max_disagree=43)`` -> int64 [P, 2] with i < j.
"""

from __future__ import annotations

import math

import numpy as np

DIAGONAL = 24       # buckets up to this size are compared diagonal by diagonal, larger ones as dense blocks
CELL = 1 << 15      # member pairs per dense block (keeps the working arrays in cache)


def collision_probability(j: float, bands: int, rows: int) -> float:
    """Chance that a pair at Jaccard ``j`` shares at least one bucket."""
    return 1.0 - (1.0 - j ** rows) ** bands


def min_agreement(slots: int, bits: int, threshold: float, miss: float) -> int:
    """Largest agreement c with P(agreement < c | J = threshold) <= miss, for ``bits`` bits per slot."""
    p = threshold + (1.0 - threshold) / 2 ** bits
    if p >= 1.0:
        return slots
    below = 0.0                                       # P(agreement < c), built up one term at a time
    for c in range(slots + 1):
        term = math.exp(math.lgamma(slots + 1) - math.lgamma(c + 1) - math.lgamma(slots - c + 1)
                        + c * math.log(p) + (slots - c) * math.log1p(-p))
        if below + term > miss:
            return c
        below += term
    return slots


def buckets(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, starts, sizes) of the buckets with two or more records: bucket t holds the records
    ``order[starts[t]:starts[t] + sizes[t]]``."""
    order = np.argsort(keys)
    ks = keys[order]
    new = np.ones(len(ks), bool)
    new[1:] = ks[1:] != ks[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(ks)))
    multi = sizes >= 2
    return order, starts[multi], sizes[multi]


def colliding_pairs(sizes: np.ndarray) -> int:
    """Number of record pairs that share one of these buckets (what plain LSH would hand on)."""
    return int((sizes * (sizes - 1) // 2).sum())


def bucket_pairs(keys: np.ndarray, sketch: np.ndarray | None, rank: np.ndarray, max_disagree: int | None,
                 max_bucket: int = 64, anchors: int = 16) -> np.ndarray:
    """Pairs (i < j, possibly repeated) sharing a bucket of this band that pass the 1-bit sketch test.

    ``keys`` uint64 [N] one band's keys; ``sketch`` uint64 [words, N] bit 0 of every slot (None: no test);
    ``rank`` uint64 [N] content rank choosing a giant bucket's anchors.
    """
    order, starts, sizes = buckets(keys)
    found = []
    giant = sizes > max_bucket
    for s, m in zip(starts[giant].tolist(), sizes[giant].tolist()):
        found.append(_anchor_pairs(order[s:s + m], rank, sketch, max_disagree, anchors))
    starts, sizes = starts[~giant], sizes[~giant]
    if sketch is None or max_disagree is None:
        found.append(_all_pairs(order, starts, sizes))
    else:
        for m in np.unique(sizes).tolist():                   # buckets of one size at a time
            sel = starts[sizes == m]
            members = order[sel[:, None] + np.arange(m)]          # [B, m] record indices
            local = sketch[:, members]                            # [words, B, m]
            found.extend(_diagonals(members, local, max_disagree) if m <= DIAGONAL else
                         _dense(members, local, max_disagree))
    if not found:
        return np.empty((0, 2), np.int64)
    pairs = np.concatenate(found)
    return np.stack([pairs.min(axis=1), pairs.max(axis=1)], axis=1)


def _disagree(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Slots whose bit differs, uint16; ``left`` and ``right`` [words, ...] (broadcast)."""
    dis = np.zeros(np.broadcast_shapes(left.shape, right.shape)[1:], np.uint16)
    for w in range(left.shape[0]):
        dis += np.bitwise_count(left[w] ^ right[w])
    return dis


def _diagonals(members: np.ndarray, local: np.ndarray, max_disagree: int) -> list:
    """Many small buckets of size m: member r against member r + d of every bucket, one d at a time
    (contiguous slices, no gathers; m - 1 steps)."""
    m = members.shape[1]
    out = []
    for d in range(1, m):
        b, r = np.nonzero(_disagree(local[:, :, :m - d], local[:, :, d:]) <= max_disagree)   # [B, m - d]
        if len(b):
            out.append(np.stack([members[b, r], members[b, r + d]], axis=1))
    return out


def _dense(members: np.ndarray, local: np.ndarray, max_disagree: int) -> list:
    """Larger buckets: all members against all as [b, m, m] blocks (twice the pairs, no gathers)."""
    n_buckets, m = members.shape
    upper = np.triu(np.ones((m, m), bool), 1)
    per = max(1, CELL // (m * m))
    out = []
    for b0 in range(0, n_buckets, per):
        blk = local[:, b0:b0 + per]
        ok = _disagree(blk[:, :, :, None], blk[:, :, None, :]) <= max_disagree   # [b, m, m]
        b, r, c = np.nonzero(ok & upper)
        if len(b):
            out.append(np.stack([members[b0 + b, r], members[b0 + b, c]], axis=1))
    return out


def _anchor_pairs(members: np.ndarray, rank: np.ndarray, sketch: np.ndarray | None, max_disagree: int | None,
                  anchors: int) -> np.ndarray:
    """Each member of a giant bucket against the ``anchors`` members of smallest rank."""
    chosen = members[np.lexsort((members, rank[members]))[:anchors]]          # [A]
    if sketch is None or max_disagree is None:
        ok = np.ones((len(chosen), len(members)), bool)
    else:
        ok = _disagree(sketch[:, chosen, None], sketch[:, None, members]) <= max_disagree   # [A, m]
    ok &= chosen[:, None] != members[None, :]
    a, k = np.nonzero(ok)
    return np.stack([chosen[a], members[k]], axis=1)


def _all_pairs(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Every pair inside every bucket (no sketch test)."""
    if not len(sizes):
        return np.empty((0, 2), np.int64)
    pos = np.repeat(starts, sizes) + (np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes))
    after = np.repeat(starts + sizes, sizes) - pos - 1          # members after each position in its bucket
    left = np.repeat(pos, after)
    right = left + 1 + (np.arange(after.sum()) - np.repeat(np.cumsum(after) - after, after))
    return np.stack([order[left], order[right]], axis=1)


def sketch_filter(pairs: np.ndarray, planes: np.ndarray, max_disagree: int, chunk: int = 1 << 16) -> np.ndarray:
    """The pairs whose sketches (``planes`` uint64 [bits, words, N]) differ in at most ``max_disagree``
    slots; a slot differs when any of its bits does."""
    keep = np.zeros(len(pairs), bool)
    for s in range(0, len(pairs), chunk):
        i, j = pairs[s:s + chunk, 0], pairs[s:s + chunk, 1]
        dis = np.zeros(len(i), np.uint16)
        for w in range(planes.shape[1]):
            diff = planes[0, w, i] ^ planes[0, w, j]
            for bit in range(1, planes.shape[0]):
                diff |= planes[bit, w, i] ^ planes[bit, w, j]
            dis += np.bitwise_count(diff)
        keep[s:s + chunk] = dis <= max_disagree
    return pairs[keep]


def pair_codes(pairs: np.ndarray, n: int) -> np.ndarray:
    """Pairs (i < j) as single int64 codes i * n + j (sortable, unique per pair)."""
    return pairs[:, 0] * np.int64(n) + pairs[:, 1]
