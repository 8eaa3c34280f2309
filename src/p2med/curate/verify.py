"""Exact Jaccard of candidate pairs, the n-gram sets it needs, and the clusters (union-find) it yields.

``SetStore`` keeps every record's n-gram set (sorted distinct uint64 hashes, ``minhash.ngram_sets``) twice:
the high 16 bits of each value in memory (2 bytes an n-gram) and the full values in one ``.npy`` file per
shard inside a scratch folder, read back through a short-lived memory map, so the full sets of a corpus
(1.7 GB at 684,758 records) never sit in memory.
``jaccard`` computes |A & B| / |A | B| for a batch of pairs: each pair's two sets side by side in one row of
a padded [pairs, |A| + |B|] array, rows sorted, equal neighbours counted. On the 16-bit values it is an upper
bound (values that share their high bits can only add equal neighbours), so a pair below the threshold there
is below it exactly; only the others are computed again on the full values.
``UnionFind`` merges verified pairs; ``connected`` lets the caller skip pairs already in one cluster, which
cannot change any cluster (a flood of near-copies costs about one check per copy, not one per pair).
Example: ``UnionFind(3).union(np.array([[0, 2]]))`` -> clusters ``[[0, 2]]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HIGH = np.uint64(48)                                 # the in-memory copy keeps bits 48..63


class SetStore:
    """Per-shard n-gram sets; ``shard``, ``start``, ``size`` index a record (in the order of ``add``)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._high: list[np.ndarray] = []                       # uint16 values per shard, in memory
        self._offsets: list[np.ndarray] = []
        self.shard = self.start = self.size = np.empty(0, np.int64)

    def path(self, shard: int) -> Path:
        return self.folder / f"sets-{shard:06d}.npy"

    def write(self, shard: int, values: np.ndarray) -> np.ndarray:
        """Called in a worker: save the shard's full sets, concatenated in record order; returns the
        in-memory part (their high 16 bits) for ``add``."""
        np.save(self.path(shard), values)
        return (values >> HIGH).astype(np.uint16)

    def add(self, offsets: np.ndarray, high: np.ndarray) -> None:
        """Called in the main process, in shard order, with a shard's offsets and the output of ``write``."""
        self._offsets.append(offsets)
        self._high.append(high)

    def freeze(self) -> None:
        """Build the record index once every shard is added."""
        if self._offsets:
            self.shard = np.concatenate([np.full(len(o) - 1, k, np.int32) for k, o in enumerate(self._offsets)])
            self.start = np.concatenate([o[:-1] for o in self._offsets])
            self.size = np.concatenate([np.diff(o) for o in self._offsets])
        self._offsets = []

    def reorder(self, order: np.ndarray) -> None:
        """Renumber the records: new record k is old record ``order[k]``."""
        self.shard, self.start, self.size = self.shard[order], self.start[order], self.size[order]

    def gather(self, records: np.ndarray, full: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The sets of ``records`` (int64 [R], in that order) as (values, offsets [R + 1]): full uint64
        values from disk, or (``full=False``) their high 16 bits from memory."""
        sizes = self.size[records]
        offsets = np.zeros(len(records) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        values = np.empty(int(offsets[-1]), np.uint64 if full else np.uint16)
        shard_of = self.shard[records]
        order = np.argsort(shard_of, kind="stable")
        cuts = np.flatnonzero(np.diff(shard_of[order])) + 1
        for sel in np.split(order, cuts) if len(order) else []:
            src = _ranges(self.start[records[sel]], sizes[sel])
            dst = _ranges(offsets[sel], sizes[sel])
            shard = int(shard_of[sel[0]])
            if full:
                mapped = np.load(self.path(shard), mmap_mode="r")
                values[dst] = mapped[src]
                del mapped                                        # unmap: the pages leave this process
            else:
                values[dst] = self._high[shard][src]
        return values, offsets


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each (s, n)."""
    firsts = np.cumsum(sizes) - sizes
    return np.repeat(starts - firsts, sizes) + np.arange(int(sizes.sum()))


def jaccard(values: np.ndarray, offsets: np.ndarray, pairs: np.ndarray, cell: int = 1 << 20) -> np.ndarray:
    """Jaccard float64 [P] of ``pairs`` (int64 [P, 2], positions into the sets ``values``/``offsets``, each
    set sorted and distinct): exact on full values, an upper bound on truncated ones."""
    la = offsets[pairs[:, 0] + 1] - offsets[pairs[:, 0]]
    lb = offsets[pairs[:, 1] + 1] - offsets[pairs[:, 1]]
    width = la + lb
    out = np.zeros(len(pairs))
    padded = np.append(values, np.iinfo(values.dtype).max)      # the pad: sorts after every real value
    order = np.argsort(width, kind="stable")                     # similar widths share a block
    s = 0
    while s < len(order):                                        # blocks of about ``cell`` values
        e = min(len(order), s + max(1, cell // max(1, int(width[order[s]]))))
        e = min(e, s + max(1, cell // max(1, int(width[order[e - 1]]))))   # widths ascend: one cut suffices
        rows = order[s:e]
        block = padded[_side_by_side(offsets, pairs[rows], la[rows], lb[rows], len(values))]   # [rows, w]
        block.sort(axis=1)
        same = block[:, 1:] == block[:, :-1]                     # a value in both sets sits twice
        same &= np.arange(block.shape[1] - 1)[None, :] < (width[rows] - 1)[:, None]   # real values only
        inter = same.sum(axis=1)
        union = width[rows] - inter
        out[rows] = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
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
        inside = np.flatnonzero(np.bincount(roots, minlength=len(roots))[roots] > 1)
        inside = inside[np.argsort(roots[inside], kind="stable")]
        return np.split(inside, np.flatnonzero(np.diff(roots[inside])) + 1) if len(inside) else []
