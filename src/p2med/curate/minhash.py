"""MinHash signatures of character n-gram sets, vectorised with numpy (SPEC section 2).

A record's text is normalised (Unicode NFKC, then every whitespace character removed) and cut into character
n-grams (5 by default: Chinese has no spaces). Each n-gram is identified by a 64-bit hash (a polynomial over
its code points, then the murmur3 finaliser); a record's set is its sorted distinct hashes. Two different
n-grams share a 64-bit hash with probability about 2^-64, so a Jaccard computed on these sets is the exact
Jaccard of the n-gram sets unless that happens.

Permutation k maps x (the high 32 bits of an n-gram's hash) to ``a_k * x mod 2^32`` with ``a_k`` odd: a
bijection of the 32-bit values, so two records agree in slot k exactly when the same n-gram is the minimum
of both sets, which happens with probability J. Signatures are computed as [permutations, n-grams] blocks
reduced per record with ``np.minimum.reduceat``.

It knows nothing of ids, bands of records or thresholds (``lsh.py``, ``dedup.py``).
Example: ``values, offsets = ngram_sets([normalise("咳嗽 3天，发热１天。")], 5)`` -> 6 distinct 5-grams.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

_POLY = np.uint64(0x100000001B3)            # the FNV prime: odd, mixes code points into 64 bits
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33, _S32 = np.uint64(33), np.uint64(32)


def normalise(text: str) -> str:
    """Unicode NFKC, then every whitespace character removed.

    NFKC is NFC applied to NFKD; when the NFKD form is already NFC (the usual case for Chinese text, checked
    exactly by ``is_normalized``) the composition step is skipped: 2 us instead of the 30 us that
    ``normalize("NFKC")`` takes on a 300-character record with full-width punctuation.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    if not unicodedata.is_normalized("NFC", decomposed):
        decomposed = unicodedata.normalize("NFC", decomposed)
    return "".join(decomposed.split())


def fmix64(h: np.ndarray) -> np.ndarray:
    """The murmur3 64-bit finaliser, in place (a bijection of uint64 that spreads every input bit)."""
    h ^= h >> _S33
    h *= _M1
    h ^= h >> _S33
    h *= _M2
    h ^= h >> _S33
    return h


def ngram_sets(texts: list[str], n: int, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct n-gram hashes of each (already normalised) text.

    Returns ``values`` uint64 [total] and ``offsets`` int64 [len(texts) + 1]: record r owns
    ``values[offsets[r]:offsets[r + 1]]``; a text shorter than n has an empty set. Texts are processed
    ``chunk`` at a time so the working arrays stay in cache.
    """
    parts, sizes = [], []
    for c in range(0, len(texts), chunk):
        values, size = _chunk_sets(texts[c:c + chunk], n)
        parts.append(values)
        sizes.append(size)
    offsets = np.zeros(len(texts) + 1, np.int64)
    if texts:
        np.cumsum(np.concatenate(sizes), out=offsets[1:])
    return (np.concatenate(parts) if parts else np.empty(0, np.uint64)), offsets


def _chunk_sets(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, texts), np.int64, count=len(texts))
    counts = np.maximum(lengths - n + 1, 0)                    # n-grams per record, with repeats
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.uint64), np.zeros(len(texts), np.int64)
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), np.uint32)   # [chars]
    m = len(codes) - n + 1
    h = codes[:m].astype(np.uint64)                            # [m] windows, some crossing records
    for k in range(1, n):
        h *= _POLY
        h += codes[k:k + m]
    first = np.cumsum(counts) - counts                         # first window of each record in the output
    starts = np.cumsum(lengths) - lengths                      # first character of each record
    h = fmix64(h[np.arange(total) - np.repeat(first - starts, counts)])   # [total] windows inside records
    for a, b in zip(first.tolist(), (first + counts).tolist()):
        h[a:b].sort()                                          # each record's windows, sorted in place
    keep = np.ones(total, bool)
    keep[1:] = h[1:] != h[:-1]
    nonempty = counts > 0
    keep[first[nonempty]] = True                               # a record's first value is always new
    sizes = np.zeros(len(texts), np.int64)
    sizes[nonempty] = np.add.reduceat(keep, first[nonempty])
    return h[keep], sizes


@dataclass(frozen=True)
class Permutations:
    """K multiplicative bijections of the 32-bit values, drawn from a seed: x -> a * x mod 2^32, a odd.

    The inputs are already uniformly random (the high 32 bits of a murmur-finalised n-gram hash), so each map
    sends a record's n-grams to independent uniform values and its minimum falls on each n-gram with equal
    chance: P(two records agree in a slot) = J. Averaged over seeds, the agreement matches J within binomial
    noise (``tests/test_curate_dedup.py``); an added constant (a * x + b) made no difference there and cost
    a third more time.
    """

    a: np.ndarray  # uint32 [K], odd

    @classmethod
    def make(cls, k: int, seed: int) -> "Permutations":
        rng = np.random.default_rng([seed, 0x5EED])
        return cls(rng.integers(0, 2 ** 32, k, dtype=np.uint64).astype(np.uint32) | np.uint32(1))

    def __len__(self) -> int:
        return len(self.a)


def signatures(values: np.ndarray, offsets: np.ndarray, perms: Permutations, block: int = 16,
               perm_block: int = 64) -> np.ndarray:
    """MinHash signatures uint32 [records, K] of the sets ``values[offsets[r]:offsets[r+1]]`` (none empty).

    Work is cut into ``block`` records x ``perm_block`` permutations so the [perms, n-grams] buffer stays in
    the CPU's L2 cache (about 1 MB): 1.7x faster here than one [K, n-grams] block.
    """
    sizes = np.diff(offsets)
    if len(sizes) and sizes.min() <= 0:
        raise ValueError("signatures: every set must hold at least one n-gram")
    x = (values >> _S32).astype(np.uint32)                     # [total] the permutations' input
    n_rec, k = len(sizes), len(perms)
    out = np.empty((k, n_rec), np.uint32)                      # [K, records], transposed at the end
    ends = offsets[np.minimum(np.arange(0, n_rec, block) + block, n_rec)]
    widest = int((ends - offsets[:n_rec:block]).max()) if n_rec else 0
    buf = np.empty(min(k, perm_block) * widest, np.uint32)
    for s in range(0, n_rec, block):
        e = min(s + block, n_rec)
        lo, hi = offsets[s], offsets[e]
        for p in range(0, k, perm_block):
            q = min(p + perm_block, k)
            perm = buf[:(q - p) * (hi - lo)].reshape(q - p, hi - lo)      # [perms, n-grams of records s..e]
            np.multiply(perms.a[p:q, None], x[None, lo:hi], out=perm)
            out[p:q, s:e] = np.minimum.reduceat(perm, offsets[s:e] - lo, axis=1)   # [perms, e - s]
    return np.ascontiguousarray(out.T)


def sketch_planes(sig: np.ndarray, bits: int) -> np.ndarray:
    """The low ``bits`` bits of every signature value as bit planes, uint64 [bits, records, K / 64].

    The low bits of ``a * x`` depend only on the low bits of x (the minimising n-gram), so two records agree
    in a slot's low bits with probability J + (1 - J) / 2**bits: a compact estimate of J.
    """
    n_rec, k = sig.shape
    planes = np.empty((bits, n_rec, k // 64), np.uint64)
    for bit in range(bits):
        flags = ((sig >> np.uint32(bit)) & np.uint32(1)).astype(np.uint8)    # [N, K]
        planes[bit] = np.packbits(flags, axis=1, bitorder="little").view(np.uint64)
    return planes


def band_keys(sig: np.ndarray, bands: int, rows: int, seed: int = 0) -> np.ndarray:
    """One uint64 key per band [records, bands]: equal rows give equal keys; different rows collide with
    probability about 2^-64 (a false collision only adds a candidate, which exact Jaccard then rejects)."""
    n_rec = sig.shape[0]
    rng = np.random.default_rng([seed, 0xBA2D])
    mult = rng.integers(0, 2 ** 63, rows, dtype=np.uint64) * np.uint64(2) + np.uint64(1)   # odd [rows]
    cells = sig[:, :bands * rows].reshape(n_rec, bands, rows)                              # [N, B, R]
    keys = cells[:, :, 0].astype(np.uint64) * mult[0]
    for r in range(1, rows):
        keys += cells[:, :, r].astype(np.uint64) * mult[r]    # a random linear map of the row values
    return fmix64(keys)
