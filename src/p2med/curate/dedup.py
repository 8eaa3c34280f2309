"""Near-deduplication of text records (SPEC section 2): ``dedup(records, cfg) -> DedupResult``.

Records stream in as (id, text) pairs, the text being all sections of a record concatenated. Shards of
``shard_records`` records go to ``workers`` processes, which normalise (NFKC, whitespace removed), cut
character n-grams, drop records with fewer than ``min_ngrams`` distinct n-grams (``too_short``), write the
normalised texts to a scratch folder and send back band keys, sketches and 16-bit copies of the sets (about
400 bytes a record plus 2 bytes an n-gram). Then per band the LSH buckets hand on pairs (``lsh.py``), every one
of which is checked by exact Jaccard (``verify.py``); pairs at or above ``threshold`` are joined by
union-find into clusters.

Kept record of a cluster: the member with the most distinct n-grams (the most complete text), ties broken by
the smallest id (Python string order). Once hashed, records are indexed in id order, so everything (clusters,
verified pairs, statistics) depends only on the records' ids and texts and the config, never on their order
or on the number of workers.
Example: ``dedup([("a", "咳嗽3天，发热1天。"), ("b", "咳嗽3天，发热1天 。")], DedupConfig(workers=1))``
-> one cluster ``Cluster(members=["a", "b"], kept="a")``.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from ..common.errors import P2MedError
from ..config import check
from .lsh import bucket_pairs, colliding_pairs, buckets, min_agreement, pair_codes, sketch_filter
from .minhash import Permutations, band_keys, fmix64, ngram_sets, normalise, signatures, sketch_planes
from .verify import SetStore, UnionFind, _ranges, jaccard


@dataclass
class DedupConfig:
    ngram: int = 5                  # characters per n-gram, after NFKC and whitespace removal
    min_ngrams: int = 5             # records with fewer distinct n-grams are dropped as too short
    threshold: float = 0.85         # exact Jaccard at or above which two records are duplicates
    permutations: int = 256         # MinHash signature length
    bands: int = 32                 # LSH bands (bands * rows <= permutations)
    rows: int = 8                   # signature values per band
    sketch_bits: int = 4            # low bits per slot compared before exact Jaccard; 0 = hand on every pair
    sketch_slots: int = 256         # signature slots the sketch test compares (a multiple of 64)
    sketch_miss: float = 1e-6       # chance that the sketch test drops a pair at exactly J = threshold
    max_bucket: int = 64            # larger buckets pair each member with anchors only; 0 = no limit
    anchors: int = 16               # anchor members of such a bucket
    seed: int = 0                   # seed of the permutations
    workers: int = 2                # processes (1: everything in this process)
    shard_records: int = 8192       # records hashed per task
    verify_batch: int = 20000       # candidate pairs per exact-Jaccard task

    def __post_init__(self) -> None:
        check(self.ngram >= 1, "ngram", f"must be >= 1, got {self.ngram}")
        check(self.min_ngrams >= 1, "min_ngrams", f"must be >= 1, got {self.min_ngrams}")
        check(0.0 < self.threshold <= 1.0, "threshold", f"is a Jaccard in (0, 1], got {self.threshold}")
        check(self.bands >= 1 and self.rows >= 1, "bands", f"bands and rows must be >= 1, got {self.bands}, "
              f"{self.rows}")
        check(self.bands * self.rows <= self.permutations, "permutations",
              f"bands * rows = {self.bands * self.rows} exceeds permutations = {self.permutations}")
        check(0 <= self.sketch_bits <= 8, "sketch_bits", f"must be 0..8, got {self.sketch_bits}")
        check(self.sketch_bits == 0 or (self.sketch_slots % 64 == 0 and 64 <= self.sketch_slots
                                        <= self.permutations), "sketch_slots",
              f"must be a multiple of 64 between 64 and permutations, got {self.sketch_slots}")
        check(0.0 < self.sketch_miss < 0.5, "sketch_miss", f"must be in (0, 0.5), got {self.sketch_miss}")
        check(self.max_bucket == 0 or self.max_bucket >= 2, "max_bucket", f"0 or >= 2, got {self.max_bucket}")
        check(self.anchors >= 1, "anchors", f"must be >= 1, got {self.anchors}")
        for name in ("workers", "shard_records", "verify_batch"):
            check(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Cluster:
    members: list[str]              # every id of the cluster, the kept one included, sorted
    kept: str                       # the one record of the cluster that stays


@dataclass
class DedupStats:
    records: int = 0                # input records
    too_short: int = 0              # dropped for having fewer than min_ngrams distinct n-grams
    colliding_pairs: int = 0        # pairs sharing a bucket, summed over bands (what plain LSH hands on)
    giant_buckets: int = 0          # buckets over max_bucket, summed over bands (paired with anchors)
    candidates: int = 0             # distinct pairs that passed the sketch test
    jaccard_checks: int = 0         # exact Jaccard computed (candidates not already in one cluster)
    duplicate_pairs: int = 0        # pairs found at or above the threshold
    clusters: int = 0               # clusters of two or more records
    dropped: int = 0                # duplicates removed (cluster members other than the kept one)
    seconds: dict = field(default_factory=dict)   # wall time per phase: hash, lsh, verify, total


@dataclass
class DedupResult:
    clusters: list[Cluster]                 # sorted by kept id
    too_short: list[str]                    # sorted
    dropped: list[str]                      # ids of duplicates not kept, sorted (too-short ids not included)
    pairs: list[tuple[str, str, float]]     # every verified duplicate pair (id, id, exact Jaccard)
    stats: DedupStats


_SHARED: dict = {}   # what the forked workers read: the index, the store, the thresholds


def dedup(records: Iterable[tuple[str, str]], cfg: DedupConfig, progress: bool = False) -> DedupResult:
    """Cluster near-duplicate records; see the module docstring."""
    start = time.perf_counter()
    stats = DedupStats()
    with tempfile.TemporaryDirectory(prefix="p2med-dedup-") as scratch:
        store = SetStore(scratch, cfg.ngram)
        ids, index = _hash_all(records, cfg, store, progress)
        store.freeze()
        stats.records, stats.too_short = len(ids), int((~index["ok"]).sum())
        valid = _canonical(ids, index, store)                    # LSH index -> input position, ids ascending
        stats.seconds["hash"] = time.perf_counter() - start
        edges, scores, uf = np.empty((0, 2), np.int64), np.empty(0), UnionFind(len(valid))
        if len(valid) >= 2:
            _SHARED.update(index=index, store=store, cfg=cfg, max1=None, max2=None)
            if cfg.sketch_bits:
                slots = cfg.sketch_slots
                _SHARED["max1"] = slots - min_agreement(slots, 1, cfg.threshold, cfg.sketch_miss / 2)
                _SHARED["max2"] = slots - min_agreement(slots, cfg.sketch_bits, cfg.threshold, cfg.sketch_miss / 2)
            try:
                with _pool(cfg.workers) as pool:
                    t = time.perf_counter()
                    candidates = _candidates(pool, cfg, stats)
                    stats.seconds["lsh"] = time.perf_counter() - t
                    t = time.perf_counter()
                    edges, scores, uf = _verify(pool, candidates, len(valid), cfg, stats)
                    stats.seconds["verify"] = time.perf_counter() - t
            finally:
                _SHARED.clear()
    sizes = index["sizes"]
    clusters, dropped = [], []
    if len(edges):
        for group in uf.clusters():
            member_ids = sorted(ids[valid[g]] for g in group)
            kept = ids[valid[min(group.tolist(), key=lambda g: (-int(sizes[g]), ids[valid[g]]))]]
            clusters.append(Cluster(member_ids, kept))
            dropped.extend(m for m in member_ids if m != kept)
    clusters.sort(key=lambda c: c.kept)
    stats.clusters, stats.dropped, stats.duplicate_pairs = len(clusters), len(dropped), len(edges)
    stats.seconds["total"] = time.perf_counter() - start
    too_short = sorted(ids[i] for i in np.flatnonzero(~index["ok"]))
    pairs = [(ids[valid[a]], ids[valid[b]], float(j)) for (a, b), j in zip(edges.tolist(), scores.tolist())]
    return DedupResult(clusters, too_short, sorted(dropped), pairs, stats)


def _canonical(ids: list[str], index: dict, store: SetStore) -> np.ndarray:
    """Reorder the index of the hashed records by id, so that tie-breaks, pair orientation and the order in
    which pairs are checked depend on the records only, not on the input order. Returns input positions."""
    valid = np.flatnonzero(index["ok"])
    order = np.array(sorted(range(len(valid)), key=lambda k: ids[valid[k]]), np.int64)
    index["keys"], index["planes"] = index["keys"][:, order], index["planes"][:, :, order]
    index["sizes"], index["rank"] = index["sizes"][order], index["rank"][order]
    store.reorder(order)
    return valid[order]


# -- phase 1: hash every record (workers), keep band keys and sketches (main) ---------------------------------
def _shards(records: Iterable[tuple[str, str]], size: int, ids: list[str]) -> Iterator[list[str]]:
    seen: dict[str, int] = {}
    texts: list[str] = []
    for pos, record in enumerate(records):
        try:
            rid, text = record
        except (TypeError, ValueError):
            raise P2MedError(f"record {pos + 1}: expected an (id, text) pair, got {type(record).__name__}") \
                from None
        if not isinstance(rid, str) or not rid:
            raise P2MedError(f"record {pos + 1}: the id must be a non-empty string, got {type(rid).__name__}")
        if not isinstance(text, str):
            raise P2MedError(f"record {pos + 1}: the text must be a string, got {type(text).__name__}")
        if rid in seen:
            raise P2MedError(f"record {pos + 1} repeats the id of record {seen[rid] + 1}; ids must be unique")
        seen[rid] = pos
        ids.append(rid)
        texts.append(text)
        if len(texts) == size:
            yield texts
            texts = []
    if texts:
        yield texts


def _hash_all(records, cfg: DedupConfig, store: SetStore, progress: bool) -> tuple[list[str], dict]:
    from tqdm import tqdm

    ids: list[str] = []
    parts: list[dict] = []
    bar = tqdm(desc="dedup: hash", unit=" records", disable=not progress, mininterval=2)

    def take(part: dict) -> None:
        store.add(part.pop("offsets"), part.pop("high"), part.pop("text_offsets"))
        parts.append(part)
        bar.update(len(part["ok"]))

    tasks = ((k, texts, cfg, str(store.folder)) for k, texts in enumerate(_shards(records, cfg.shard_records, ids)))
    if cfg.workers == 1:
        for task in tasks:
            take(_hash_shard(task))
    else:
        with mp.get_context("fork").Pool(cfg.workers) as pool:
            pending: deque = deque()
            for task in tasks:                                    # at most 2 shards per worker in flight
                pending.append(pool.apply_async(_hash_shard, (task,)))
                if len(pending) >= 2 * cfg.workers:
                    take(pending.popleft().get())
            while pending:
                take(pending.popleft().get())
    bar.close()
    bits, words = max(cfg.sketch_bits, 1), cfg.sketch_slots // 64
    index = {"ok": np.concatenate([p["ok"] for p in parts]) if parts else np.zeros(0, bool),
             "sizes": np.concatenate([p["sizes"] for p in parts]) if parts else np.zeros(0, np.int64),
             "rank": np.concatenate([p["rank"] for p in parts]) if parts else np.zeros(0, np.uint64),
             "keys": np.concatenate([p["keys"] for p in parts], axis=1) if parts else
             np.zeros((cfg.bands, 0), np.uint64),
             "planes": np.concatenate([p["planes"] for p in parts], axis=2) if parts else
             np.zeros((bits, words, 0), np.uint64)}
    return ids, index


def _hash_shard(task: tuple) -> dict:
    shard, texts, cfg, folder = task
    texts = [normalise(t) for t in texts]
    values, offsets = ngram_sets(texts, cfg.ngram)
    sizes = np.diff(offsets)
    ok = sizes >= cfg.min_ngrams
    sel = np.flatnonzero(ok)
    if len(sel) < len(texts):                                    # keep the sets of the long-enough records
        values = values[_ranges(offsets[sel], sizes[sel])]
        offsets = np.concatenate(([0], np.cumsum(sizes[sel])))
        texts = [texts[i] for i in sel.tolist()]
    high, text_offsets = SetStore(folder, cfg.ngram).write(shard, texts, values)
    sig = signatures(values, offsets, Permutations.make(cfg.permutations, cfg.seed))   # [n, K]
    if cfg.sketch_bits:
        planes = sketch_planes(sig[:, :cfg.sketch_slots], cfg.sketch_bits).transpose(0, 2, 1)   # [bits, W, n]
    else:
        planes = np.zeros((1, cfg.sketch_slots // 64, len(sel)), np.uint64)
    rank = fmix64((sig[:, 0].astype(np.uint64) << np.uint64(32)) | sig[:, 1])
    return {"ok": ok, "sizes": sizes[sel], "offsets": offsets, "high": high, "text_offsets": text_offsets,
            "rank": rank,
            "keys": np.ascontiguousarray(band_keys(sig, cfg.bands, cfg.rows, cfg.seed).T),   # [bands, n]
            "planes": np.ascontiguousarray(planes)}


# -- phase 2: candidate pairs per band (workers) ----------------------------------------------------------------
class _Inline:
    """Stands in for a pool when workers == 1."""

    def imap_unordered(self, fn, items):
        return map(fn, items)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _pool(workers: int):
    return _Inline() if workers == 1 else mp.get_context("fork").Pool(workers)


def _candidates(pool, cfg: DedupConfig, stats: DedupStats) -> np.ndarray:
    codes = []
    for band_codes, colliding, giant in pool.imap_unordered(_band_task, range(cfg.bands)):
        codes.append(band_codes)
        stats.colliding_pairs += colliding
        stats.giant_buckets += giant
    codes = np.unique(np.concatenate(codes))
    stats.candidates = len(codes)
    return codes


def _band_task(band: int) -> tuple[np.ndarray, int, int]:
    index, cfg = _SHARED["index"], _SHARED["cfg"]
    keys, planes, rank = index["keys"][band], index["planes"], index["rank"]
    sizes = buckets(keys)[2]
    max_bucket = cfg.max_bucket or len(keys)
    sketch = planes[0] if _SHARED["max1"] is not None else None
    pairs = bucket_pairs(keys, sketch, rank, _SHARED["max1"], max_bucket, cfg.anchors)
    if _SHARED["max2"] is not None and cfg.sketch_bits > 1:
        pairs = sketch_filter(pairs, planes, _SHARED["max2"])
    return np.unique(pair_codes(pairs, len(keys))), colliding_pairs(sizes), int((sizes > max_bucket).sum())


# -- phase 3: exact Jaccard of the candidates (workers), union-find (main) ------------------------------------
def _verify(pool, codes: np.ndarray, n: int, cfg: DedupConfig, stats: DedupStats):
    """Rounds of candidates: drop pairs already joined, bound their Jaccard on the in-memory 16-bit sets
    (workers), compute it exactly from the full sets for the pairs that may reach the threshold (here)."""
    store = _SHARED["store"]
    uf = UnionFind(n)
    pairs = np.stack([codes // n, codes % n], axis=1)
    edges, scores = [], []
    step = cfg.verify_batch * 4                                   # rounds do not depend on the workers
    for s in range(0, len(pairs), step):
        chunk = pairs[s:s + step]
        chunk = chunk[~uf.connected(chunk)]                       # already one cluster: nothing to learn
        stats.jaccard_checks += len(chunk)
        tasks = [chunk[k:k + cfg.verify_batch] for k in range(0, len(chunk), cfg.verify_batch)]
        maybe = list(pool.imap_unordered(_bound_task, tasks))
        maybe = np.concatenate(maybe) if maybe else np.empty((0, 2), np.int64)
        if len(maybe):
            records, inverse = np.unique(maybe, return_inverse=True)
            j = jaccard(*store.gather(records, full=True), inverse.reshape(-1, 2))
            ok = j >= cfg.threshold
            uf.union(maybe[ok])
            edges.append(maybe[ok])
            scores.append(j[ok])
    edges = np.concatenate(edges) if edges else np.empty((0, 2), np.int64)
    scores = np.concatenate(scores) if scores else np.empty(0)
    order = np.lexsort((edges[:, 1], edges[:, 0])) if len(edges) else np.empty(0, np.int64)
    return edges[order], scores[order], uf


def _bound_task(pairs: np.ndarray) -> np.ndarray:
    """The pairs whose Jaccard on 16-bit values (an upper bound) reaches the threshold."""
    records, inverse = np.unique(pairs, return_inverse=True)
    values, offsets = _SHARED["store"].gather(records, full=False)
    return pairs[jaccard(values, offsets, inverse.reshape(-1, 2)) >= _SHARED["cfg"].threshold]
