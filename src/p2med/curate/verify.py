"""Exact Jaccard of candidate pairs, the n-gram sets it needs, and the clusters (union-find) it yields.

``SetStore`` keeps every record's n-gram set (sorted distinct uint64 hashes, ``minhash.ngram_sets``) in one
``.npy`` file per shard inside a scratch folder and gathers the sets of any records back through a short-lived
memory map, so the sets of a whole corpus (1.7 GB at 684,758 records) never sit in memory at once.
``jaccard`` computes |A & B| / |A | B| for a batch of pairs: each pair's two sets side by side in one row of
a padded [pairs, |A| + |B|] array, rows sorted, equal neighbours counted.
``UnionFind`` merges verified pairs; ``connected`` lets the caller skip pairs already in one cluster, which
cannot change any cluster (a flood of near-copies costs about one check per copy, not one per pair).
Example: ``UnionFind(3).union(np.array([[0, 2]]))`` -> clusters ``[[0, 2]]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PAD = np.uint64(2 ** 64 - 1)


class SetStore:
    """Per-shard files of n-gram sets; ``index`` maps a record to (shard, first value, size)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._shards: list[np.ndarray] = []
        self._starts: list[np.ndarray] = []
        self.shard = self.start = self.size = np.empty(0, np.int64)

    def path(self, shard: int) -> Path:
        return self.folder / f"sets-{shard:06d}.npy"

    def write(self, shard: int, values: np.ndarray) -> None:
        """Called in a worker: the shard's sets, concatenated in record order."""
        np.save(self.path(shard), values)

    def add(self, shard: int, offsets: np.ndarray) -> None:
        """Called in the main process, in shard order: the offsets of that shard's records."""
        self._shards.append(np.full(len(offsets) - 1, shard, np.int32))
        self._starts.append(offsets)

    def freeze(self) -> None:
        """Build the index once every shard is added."""
        if self._starts:
            self.shard = np.concatenate(self._shards)
            self.start = np.concatenate([o[:-1] for o in self._starts])
            self.size = np.concatenate([np.diff(o) for o in self._starts])
        self._shards, self._starts = [], []

    def gather(self, records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sets of ``records`` (int64 [R], in that order) as (values, offsets [R + 1])."""
        sizes = self.size[records]
        offsets = np.zeros(len(records) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        values = np.empty(int(offsets[-1]), np.uint64)
        shard_of = self.shard[records]
        for shard in np.unique(shard_of).tolist():
            sel = np.flatnonzero(shard_of == shard)
            src = _ranges(self.start[records[sel]], sizes[sel])
            dst = _ranges(offsets[sel], sizes[sel])
            mapped = np.load(self.path(shard), mmap_mode="r")
            values[dst] = mapped[src]
            del mapped                                            # unmap: the pages leave this process
        return values, offsets


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each (s, n)."""
    firsts = np.cumsum(sizes) - sizes
    return np.repeat(starts - firsts, sizes) + np.arange(int(sizes.sum()))


def jaccard(values: np.ndarray, offsets: np.ndarray, pairs: np.ndarray, threshold: float = 0.0,
            cell: int = 1 << 20) -> np.ndarray:
    """Jaccard float64 [P] of ``pairs`` (int64 [P, 2], positions into the sets ``values``/``offsets``),
    exact for every pair at or above ``threshold``; a pair below it may get any value below it.

    A first pass compares the high 32 bits of the values: merging values can only add to the intersection,
    so a pair below the threshold there is below it exactly; only the others are recomputed on 64 bits.
    """
    la = offsets[pairs[:, 0] + 1] - offsets[pairs[:, 0]]
    lb = offsets[pairs[:, 1] + 1] - offsets[pairs[:, 1]]
    width = la + lb
    out = np.zeros(len(pairs))
    order = np.argsort(width, kind="stable")                     # similar widths share a block
    high = np.append((values >> np.uint64(32)).astype(np.uint32), np.uint32(2 ** 32 - 1))   # + a pad
    full = None
    s = 0
    while s < len(order):                                        # blocks of about ``cell`` values
        e = min(len(order), s + max(1, cell // max(1, int(width[order[s]]))))
        e = min(e, s + max(1, cell // max(1, int(width[order[e - 1]]))))   # widths ascend: one cut suffices
        rows = order[s:e]
        index = _side_by_side(offsets, pairs[rows], la[rows], lb[rows], len(values))   # [rows, w]
        j = _sorted_rows_jaccard(high[index], width[rows])
        again = j >= threshold
        if again.any():
            full = np.append(values, PAD) if full is None else full
            j[again] = _sorted_rows_jaccard(full[index[again]], width[rows[again]])
        out[rows] = j
        s = e
    return out


def _side_by_side(offsets, pairs, la, lb, pad) -> np.ndarray:
    """[P, max(la + lb)] int32 positions: row p holds set A's positions, then set B's, then ``pad``."""
    col = np.arange(int((la + lb).max()), dtype=np.int32)[None, :]
    index = offsets[pairs[:, 0]].astype(np.int32)[:, None] + col
    shift = (offsets[pairs[:, 1]] - offsets[pairs[:, 0]] - la).astype(np.int32)[:, None]
    np.add(index, shift, out=index, where=col >= la.astype(np.int32)[:, None])
    np.copyto(index, np.int32(pad), where=col >= (la + lb).astype(np.int32)[:, None])
    return index


def _sorted_rows_jaccard(block: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Rows of two distinct-valued sets side by side (pads, the largest value, after them): sort each row,
    count equal neighbours among the first ``width`` values = |A & B|."""
    block.sort(axis=1)
    same = block[:, 1:] == block[:, :-1]
    same &= np.arange(block.shape[1] - 1)[None, :] < (width - 1)[:, None]
    inter = same.sum(axis=1)
    union = width - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


class UnionFind:
    """Clusters over record indices 0..n-1; the root of a cluster is its smallest index."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return int(x)

    def union(self, pairs: np.ndarray) -> None:
        for i, j in pairs.tolist():
            ri, rj = self.find(i), self.find(j)
            if ri != rj:
                self.parent[max(ri, rj)] = min(ri, rj)

    def roots(self, x: np.ndarray | None = None) -> np.ndarray:
        """Root of every index in ``x`` (all when None), vectorised with full path compression."""
        parent = self.parent
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent[:] = up
        return parent if x is None else parent[x]

    def connected(self, pairs: np.ndarray) -> np.ndarray:
        """bool [P]: both ends of each pair are already in one cluster."""
        roots = self.roots()
        return roots[pairs[:, 0]] == roots[pairs[:, 1]]

    def clusters(self) -> list[np.ndarray]:
        """Every cluster of two or more indices, each sorted, ordered by their smallest index."""
        roots = self.roots()
        order = np.argsort(roots, kind="stable")
        cut = np.flatnonzero(np.diff(roots[order])) + 1
        return [g for g in np.split(order, cut) if len(g) > 1]
