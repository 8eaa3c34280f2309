"""Resize slices exactly as scikit-image does, as two banded matrix products.

``skimage.transform.resize(img, (h, w), order=1, anti_aliasing=True)`` (the stock way) is a Gaussian
anti-aliasing filter (sigma = (in/out - 1) / 2 per downsampled axis, mirror edges) followed by bilinear
``scipy.ndimage.zoom`` with ``grid_mode=True``: both are linear and separable, so the whole resize is
``out = R @ img @ C.T`` with R [h, H] and C [w, W]. We build R and C once per geometry (~1 ms) from scipy's
definitions of those two operations (equal to scikit-image to float rounding, ~1e-7), and apply them per band
of output rows/columns (each output pixel reads only ~4 input pixels), which is ~10x cheaper than the
filter + zoom and exact. Letterboxing (optional) keeps the aspect ratio in mm and pads with 0.
It does not know windows or files. Example: ``Resizer(512, 512, 336, 336)(slices)`` [S, 512, 512] -> [S, 336, 336].
"""

from __future__ import annotations

import functools

import numpy as np

_BAND = 16  # output rows/columns per matrix block: small blocks skip the zeros, large ones feed BLAS better


@functools.lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The 1-D operator [n_out, n_in] of scikit-image's order-1 anti-aliased resize along one axis (float64).

    Written out from scipy's definitions, which scikit-image calls: ``gaussian_filter1d`` (kernel
    ``exp(-k**2 / (2 sigma**2))`` for ``|k| <= int(4 sigma + 0.5)``, normalised) and ``zoom(order=1,
    grid_mode=True)`` (output j samples input coordinate ``(j + 0.5) * n_in / n_out - 0.5`` linearly), both with
    ``mode="mirror"``; a test checks it against those scipy calls on an identity matrix. Built from the ~2 x 4 sigma
    taps of each output, so a 4,000-pixel radiograph needs no n_in x n_in matrix.
    """
    sigma = max(0.0, (n_in / n_out - 1.0) / 2.0)
    if sigma > 1e-15:
        r = int(4.0 * sigma + 0.5)
        k = np.arange(-r, r + 1)
        w = np.exp(-0.5 / (sigma * sigma) * k ** 2)
        w /= w.sum()                                                     # [2r+1] filter taps
    else:
        k, w = np.zeros(1, np.int64), np.ones(1)
    x = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5 if n_in != n_out else np.arange(n_out, dtype=np.float64)
    if n_in > 1:
        x = np.abs(x)                                                    # mirror at 0 ...
        x = np.where(x > n_in - 1, 2 * (n_in - 1) - x, x)                # ... and at n_in - 1
    else:
        x = np.zeros_like(x)
    start = np.floor(x).astype(np.int64)
    t = x - start
    # output j = (1 - t) * filtered[start] + t * filtered[start + 1]; filtered[i] = sum_k w[k] * input[i + k]
    rows = np.repeat(np.arange(n_out), 2 * len(k))
    taps = np.stack([start, _mirror(start + 1, n_in)], axis=1)           # [n_out, 2]
    cols = _mirror(taps[:, :, None] + k, n_in).ravel()                   # [n_out * 2 * (2r+1)]
    vals = (np.stack([1.0 - t, t], axis=1)[:, :, None] * w).ravel()
    return np.bincount(rows * n_in + cols, vals, n_out * n_in).reshape(n_out, n_in)


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected into 0..n-1 as scipy.ndimage's ``mirror`` mode does (d c b | a b c d | c b a)."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.abs(idx) % period
    return np.where(idx > n - 1, period - idx, idx)


def _bands(m: np.ndarray) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Split M [n_out, n_in] into (j0, j1, c0, c1, M[j0:j1, c0:c1]) blocks that hold all its non-zeros."""
    out = []
    nz = m != 0
    for j0 in range(0, m.shape[0], _BAND):
        j1 = min(j0 + _BAND, m.shape[0])
        cols = np.flatnonzero(nz[j0:j1].any(axis=0))
        c0, c1 = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 1)
        out.append((j0, j1, c0, c1, np.ascontiguousarray(m[j0:j1, c0:c1], dtype=np.float32)))
    return out


class Resizer:
    """Resize [S, H, W] float32 slices to [S, out_h, out_w]; with a ``canvas`` they are centred on a square.

    ``scale`` multiplies the result at no cost (it is folded into the row operator): the CT window's slope.
    """

    def __init__(self, h: int, w: int, out_h: int, out_w: int, canvas: int | None = None,
                 scale: float = 1.0) -> None:
        self.h, self.w, self.out_h, self.out_w = h, w, out_h, out_w
        self.canvas = canvas
        self.rows = _bands(scale * resize_matrix(h, out_h))             # applied as R @ x
        self.cols = [(j0, j1, c0, c1, np.ascontiguousarray(m.T))
                     for j0, j1, c0, c1, m in _bands(resize_matrix(w, out_w))]   # applied as x @ C.T

    @classmethod
    def for_image(cls, h: int, w: int, size: int, letterbox: bool = False,
                  spacing: tuple[float, float] | None = None, scale: float = 1.0) -> "Resizer":
        """Both axes to ``size`` (the paper), or letterboxed: the longer side in mm fills ``size``.

        Resizers are immutable and cached per geometry and scale (a series reuses one for all its slices and
        exams).
        """
        return _resizer(h, w, size, letterbox, tuple(spacing) if spacing else None, float(scale))

    @classmethod
    def _build(cls, h: int, w: int, size: int, letterbox: bool, spacing: tuple[float, float] | None,
               scale: float) -> "Resizer":
        if not letterbox:
            return cls(h, w, size, size, scale=scale)
        dy, dx = spacing if spacing and all(s and s > 0 for s in spacing) else (1.0, 1.0)
        side = max(h * dy, w * dx)
        out_h = max(1, min(size, round(size * h * dy / side)))
        out_w = max(1, min(size, round(size * w * dx / side)))
        return cls(h, w, out_h, out_w, canvas=size, scale=scale)

    @property
    def offset(self) -> tuple[int, int]:
        """(row, col) where the resized image starts on the canvas (0, 0 without letterboxing)."""
        if self.canvas is None:
            return 0, 0
        return (self.canvas - self.out_h) // 2, (self.canvas - self.out_w) // 2

    @property
    def out_shape(self) -> tuple[int, int]:
        """Shape of a finished slice: the canvas when letterboxing, else (out_h, out_w)."""
        return (self.canvas, self.canvas) if self.canvas else (self.out_h, self.out_w)

    def region(self, out: np.ndarray) -> np.ndarray:
        """The view of ``out`` [S, *out_shape] that holds the image (all of it without letterboxing)."""
        r0, q0 = self.offset
        return out[:, r0:r0 + self.out_h, q0:q0 + self.out_w]

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None, tmp: np.ndarray | None = None) -> np.ndarray:
        """x float32 [S, H, W] -> float32 [S, out_h, out_w] (into ``out`` when given; no canvas padding).

        ``tmp`` (float32, at least [S, H, out_w]) holds the half-resized slices; pass one to reuse it.
        """
        s = x.shape[0]
        x2 = x.reshape(s * self.h, self.w)                               # [S*H, W]
        y = np.empty((s * self.h, self.out_w), np.float32) if tmp is None else \
            tmp.reshape(-1)[:s * self.h * self.out_w].reshape(s * self.h, self.out_w)   # [S*H, w]
        for j0, j1, c0, c1, mt in self.cols:
            np.matmul(x2[:, c0:c1], mt, out=y[:, j0:j1])
        y = y.reshape(s, self.h, self.out_w)                             # [S, H, w]
        if out is None:
            out = np.empty((s, self.out_h, self.out_w), np.float32)
        for j0, j1, c0, c1, m in self.rows:
            np.matmul(m, y[:, c0:c1], out=out[:, j0:j1])                 # [S, rows, w]
        return out

    def image(self, x: np.ndarray) -> np.ndarray:
        """x float32 [S, H, W] -> [S, *out_shape] with the letterbox padding (zeros) when there is a canvas."""
        y = self(x)
        if self.canvas is None:
            return y
        out = np.zeros((x.shape[0], *self.out_shape), np.float32)
        self.region(out)[...] = y
        return out


@functools.lru_cache(maxsize=64)
def _resizer(h: int, w: int, size: int, letterbox: bool, spacing: tuple[float, float] | None,
             scale: float) -> Resizer:
    return Resizer._build(h, w, size, letterbox, spacing, scale)
