"""Find text burned into a radiograph's pixels: a row of small, bright, high-contrast marks near an edge.

CR and DX images often carry burned-in text (name, date, institution) without BurnedInAnnotation = YES. A
white top-hat (the image minus its morphological opening) keeps thin bright strokes and drops broad anatomy;
marks with strong local contrast inside the edge bands are grouped into rows, and a row of at least
``min_marks`` glyph-sized marks, wider than tall, is text-like (a lone laterality marker is not). What it does
not know: what the text says, or dark-on-bright text (rare on radiographs). Example: ``find_text_marks(display_image(ds), BurnedInConfig())`` -> ``(9, 19, 9, 81)``
(row0, row1, col0, col1) or None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

CHECKED_MODALITIES = ("CR", "DX", "DR", "RG", "PX", "MG", "XA", "RF", "OT")


@dataclass(frozen=True)
class BurnedInConfig:
    band: float = 0.15          # edge band searched, as a share of the image height / width
    contrast: float = 0.5       # top-hat response a mark needs, as a share of the image's intensity range
    min_marks: int = 4          # marks in one row that make it text
    max_mark: float = 0.06      # largest mark (height or width) as a share of the shorter image side
    min_aspect: float = 1.5     # a line of text is wider than tall (a lone laterality marker "R" is not)


def display_image(ds) -> np.ndarray:
    """The first frame as float [H, W] in [0, 1], bright = dense (MONOCHROME1 inverted)."""
    arr = ds.pixel_array
    if arr.ndim == 3:
        arr = arr[0] if int(getattr(ds, "SamplesPerPixel", 1)) == 1 else arr.mean(axis=-1)
    img = arr.astype(np.float32)
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return np.zeros_like(img)
    img = (img - lo) / (hi - lo)
    if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        img = 1.0 - img
    return img


def find_text_marks(img: np.ndarray, cfg: BurnedInConfig = BurnedInConfig()) -> tuple[int, int, int, int] | None:
    """The box (row0, row1, col0, col1) of text-like marks near the edges of ``img`` [H, W], or None."""
    h, w = img.shape
    side = min(h, w)
    max_mark = max(4, int(cfg.max_mark * side))
    tophat = ndimage.white_tophat(img, size=(2 * max_mark + 1, 2 * max_mark + 1))  # [H, W]
    bh, bw = max(1, int(cfg.band * h)), max(1, int(cfg.band * w))
    band = np.zeros((h, w), dtype=bool)
    band[:bh, :] = band[-bh:, :] = True
    band[:, :bw] = band[:, -bw:] = True
    marks = (tophat >= cfg.contrast) & band                                       # [H, W]
    labels, n = ndimage.label(marks)
    if n < cfg.min_marks:
        return None
    boxes = []
    for sl in ndimage.find_objects(labels):
        mh, mw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if 2 <= mh <= max_mark and 1 <= mw <= max_mark:                           # glyph-sized, not noise
            boxes.append((sl[0].start, sl[0].stop, sl[1].start, sl[1].stop))
    return _best_row(boxes, cfg.min_marks, max_mark, cfg.min_aspect)


def _best_row(boxes: list[tuple[int, int, int, int]], min_marks: int, max_mark: int, min_aspect: float
              ) -> tuple[int, int, int, int] | None:
    """Group marks whose rows overlap and whose gaps are small into lines; the largest line of text-like size."""
    best = None
    boxes = sorted(boxes, key=lambda b: (b[2], b[0]))
    used = [False] * len(boxes)
    for i, seed in enumerate(boxes):
        if used[i]:
            continue
        line = [seed]
        used[i] = True
        r0, r1, c1 = seed[0], seed[1], seed[3]
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            if used[j] or b[2] - c1 > 2 * max_mark:
                continue
            if min(r1, b[1]) - max(r0, b[0]) > 0:                                 # same text row
                line.append(b)
                used[j] = True
                r0, r1, c1 = min(r0, b[0]), max(r1, b[1]), max(c1, b[3])
        c0 = min(b[2] for b in line)
        if len(line) >= min_marks and c1 - c0 >= min_aspect * (r1 - r0) and (best is None or len(line) > best[0]):
            best = (len(line), (r0, r1, c0, c1))
    return best[1] if best else None


def box_coverage(box: tuple[int, int, int, int], truth: tuple[int, int, int, int]) -> float:
    """The share of ``truth`` (row0, row1, col0, col1) that ``box`` covers: how tests and the bench score it."""
    rows = max(0, min(box[1], truth[1]) - max(box[0], truth[0]))
    cols = max(0, min(box[3], truth[3]) - max(box[2], truth[2]))
    return rows * cols / max(1, (truth[1] - truth[0]) * (truth[3] - truth[2]))
