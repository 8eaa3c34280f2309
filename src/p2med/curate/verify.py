"""Exact Jaccard of candidate pairs, the n-gram sets it needs, and the clusters (union-find) it yields.

``SetStore`` keeps every record's n-gram set (sorted distinct uint64 hashes, ``minhash.ngram_sets``) as the
high 16 bits of each value in memory (2 bytes an n-gram) and the normalised text in one UTF-16 file per shard
inside a scratch folder (2 bytes a character), from which the full set of a record is computed again when a
pair needs it: the full sets of a corpus (1.7 GB at 684,758 records) never exist at once, in memory or on disk.
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
    """Every record's n-gram set, in two forms: the high 16 bits of each value in memory, and the normalised
    text (UTF-16) in one file per shard, from which ``gather(full=True)`` computes the full set again.
    ``shard``, ``start``, ``size``, ``text_start``, ``text_bytes`` index a record (in the order of ``add``)."""

    def __init__(self, folder: str | Path, n: int) -> None:
        self.folder, self.n = Path(folder), n
        self._high: list[np.ndarray] = []                       # uint16 values per shard, in memory
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.shard = self.start = self.size = self.text_start = self.text_bytes = np.empty(0, np.int64)

    def path(self, shard: int) -> Path:
        return self.folder / f"texts-{shard:06d}.utf16"

    def write(self, shard: int, texts: list[str], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Called in a worker: save the shard's normalised texts; returns what ``add`` needs besides the set
        offsets: the high 16 bits of the set values and the texts' byte offsets in the file."""
        encoded = [t.encode("utf-16-le") for t in texts]
        with open(self.path(shard), "wb") as fh:
            fh.write(b"".join(encoded))
        text_offsets = np.zeros(len(texts) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, encoded), np.int64, count=len(encoded)), out=text_offsets[1:])
        return (values >> HIGH).astype(np.uint16), text_offsets

    def add(self, offsets: np.ndarray, high: np.ndarray, text_offsets: np.ndarray) -> None:
        """Called in the main process, in shard order: a shard's set offsets and the output of ``write``."""
        self._parts.append((offsets, text_offsets))
        self._high.append(high)

    def freeze(self) -> None:
        """Build the record index once every shard is added."""
        if self._parts:
            self.shard = np.concatenate([np.full(len(o) - 1, k, np.int32) for k, (o, _) in enumerate(self._parts)])
            self.start = np.concatenate([o[:-1] for o, _ in self._parts])
            self.size = np.concatenate([np.diff(o) for o, _ in self._parts])
            self.text_start = np.concatenate([t[:-1] for _, t in self._parts])
            self.text_bytes = np.concatenate([np.diff(t) for _, t in self._parts])
        self._parts = []

    def reorder(self, order: np.ndarray) -> None:
        """Renumber the records: new record k is old record ``order[k]``."""
        for name in ("shard", "start", "size", "text_start", "text_bytes"):
            setattr(self, name, getattr(self, name)[order])

    def gather(self, records: np.ndarray, full: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The sets of ``records`` (int64 [R], in that order) as (values, offsets [R + 1]): the full uint64
        values, computed again from the texts on disk, or (``full=False``) their high 16 bits from memory."""
        if full:
            from .minhash import ngram_sets
            return ngram_sets(self.texts(records), self.n)
        sizes = self.size[records]
        offsets = np.zeros(len(records) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        values = np.empty(int(offsets[-1]), np.uint16)
        for shard, sel in _by_shard(self.shard[records]):
            values[_ranges(offsets[sel], sizes[sel])] = self._high[shard][_ranges(self.start[records[sel]], sizes[sel])]
        return values, offsets

    def texts(self, records: np.ndarray) -> list[str]:
        """The normalised texts of ``records``, read back from the shard files."""
        out: list[str] = [""] * len(records)
        for shard, sel in _by_shard(self.shard[records]):
            mapped = np.memmap(self.path(shard), np.uint8, mode="r")
            for k, a, b in zip(sel.tolist(), self.text_start[records[sel]].tolist(),
                               (self.text_start + self.text_bytes)[records[sel]].tolist()):
                out[k] = mapped[a:b].tobytes().decode("utf-16-le")
            del mapped                                            # unmap: the pages leave this process
        return out


def _by_shard(shard_of: np.ndarray):
    """(shard, positions) for each shard present in ``shard_of``."""
    order = np.argsort(shard_of, kind="stable")
    for sel in np.split(order, np.flatnonzero(np.diff(shard_of[order])) + 1) if len(order) else []:
        yield int(shard_of[sel[0]]), sel


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
