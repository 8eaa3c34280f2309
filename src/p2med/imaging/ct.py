"""A CT exam -> its kept series as windowed, resized volumes [S, H, W] in 0..1, superior slice first.

Per kept series (``ct_series.choose``): subsample evenly to at most ``max_slices`` (warned in the entry), read
the stored values a few slices at a time, clip them to the CT window in stored units, resize
(``resize.Resizer``, with the window's slope folded into its operator), add the window's offset
(``window.window_split``: the same as HU then the window, exactly), clamp to 0..1, and turn axis-aligned but
flipped or transposed in-plane orientations into the radiological display (patient's right on the image left,
anterior at the top). When NC and CE are both kept, the shorter is
zero-padded at the inferior end to the longer and each entry's ``true_slices`` says how many slices are real.
A series whose pixels fail to decode is dropped (its bad file quarantined) and the next-ranked one is tried.
Example: ``images, warnings = process_ct(idx, cfg)`` -> ``[(entry, float32 [S, 336, 336]), ...]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cache import to_float16
from .config import IngestConfig
from .ct_series import Candidate, Choice, choose, dicom_candidates
from .dicom_header import BadFile, DicomHeader
from .dicom_index import ExamIndex
from .keywords import find_word
from .other_formats import read_nifti
from .pixels import decode_with_pydicom, read_frame_into, stored_dtype
from .resize import Resizer
from .window import clip_stored, ct_window, window_split

_CHUNK = 2  # slices per read -> clip -> resize step (keeps the intermediates in cache)


def subsample(n: int, max_slices: int) -> list[int]:
    """Evenly spaced indices (first and last kept) when ``n > max_slices``, else all."""
    if n <= max_slices:
        return list(range(n))
    return [int(i) for i in np.round(np.linspace(0, n - 1, max_slices))]


def display_transform(orientation: tuple[float, ...] | None) -> tuple[bool, bool, bool]:
    """(transpose, flip rows, flip cols) that bring an axial slice to rows = anterior->posterior, cols = R->L."""
    if orientation is None or len(orientation) != 6:
        return False, False, False
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    transpose = bool(abs(row[1]) > abs(row[0]))     # rows of the stored image run along y: swap the axes
    if transpose:
        row, col = col, row
    return transpose, bool(col[1] < 0), bool(row[0] < 0)


def _reorient(vol: np.ndarray, transform: tuple[bool, bool, bool]) -> np.ndarray:
    transpose, flip_r, flip_c = transform
    if transpose:
        vol = vol.transpose(0, 2, 1)
    if flip_r:
        vol = vol[:, ::-1]
    if flip_c:
        vol = vol[:, :, ::-1]
    return np.ascontiguousarray(vol) if any(transform) else vol


def dicom_volume(c: Candidate, cfg: IngestConfig, dtype=np.float32) -> tuple[np.ndarray, list[int]]:
    """Windowed, resized [S, H, W] (``dtype``) of a DICOM candidate and the stack indices it holds.

    Per chunk of slices: stored values, clipped to the window in stored units -> float32 -> resize with the
    window's slope folded in -> + the window's offset (``window.window_split``) -> clamped to 0..1 (by the float16
    conversion when ``dtype`` is float16), written into the output array. Buffers are allocated once per series.
    """
    stack = c.stack
    keep = subsample(len(stack.slices), cfg.max_slices)
    first = stack.slices[0].header
    rows, cols = first.rows, first.cols
    resizer = Resizer.for_image(rows, cols, cfg.image_size, cfg.letterbox, _spacing(first))
    out = (np.zeros if resizer.canvas else np.empty)((len(keep), *resizer.out_shape), dtype)   # [S, H, W]
    image = resizer.region(out)
    lo, hi = cfg.ct_window
    decoded: dict[str, np.ndarray] = {}
    fast = first.fast_pixels and all(s.header.fast_pixels and stored_dtype(s.header) == stored_dtype(first)
                                     for s in stack.slices)
    raw = np.empty((_CHUNK, rows, cols), stored_dtype(first)) if fast else None      # [c, rows, cols] stored
    x = np.empty((_CHUNK, rows, cols), np.float32)                                    # [c, rows, cols] clipped
    half = np.empty((_CHUNK, rows, resizer.out_w), np.float32)                        # [c, rows, w] resize tmp
    y = np.empty((_CHUNK, resizer.out_h, resizer.out_w), np.float32)                  # [c, h, w] resized
    bits = np.empty(y.shape, np.int32)                                                # float16 conversion tmp
    for i0 in range(0, len(keep), _CHUNK):
        part = [stack.slices[k] for k in keep[i0:i0 + _CHUNK]]
        n = len(part)
        params = [window_split(_f(s.header.rescale_slope, 1.0), _f(s.header.rescale_intercept, 0.0), lo, hi)
                  for s in part]
        same = len(set(params)) == 1
        if fast:
            for j, s in enumerate(part):
                read_frame_into(s.header, s.frame, raw[j])
            src = raw[:n]
        else:
            src = [_decoded(s.header, decoded)[s.frame] for s in part]
        if same and fast:
            clip_stored(src, params[0][0], params[0][1], out=x[:n])
        else:
            for j in range(n):
                clip_stored(np.array(src[j]), params[j][0], params[j][1], out=x[j])
        if same:                                        # one slope: folded into the resize (cached per slope)
            resize = Resizer.for_image(rows, cols, cfg.image_size, cfg.letterbox, _spacing(first), params[0][2])
            resize(x[:n], out=y[:n], tmp=half)
            np.add(y[:n], np.float32(params[0][3]), out=y[:n])
        else:
            resizer(x[:n], out=y[:n], tmp=half)
            np.multiply(y[:n], np.array([p[2] for p in params], np.float32)[:, None, None], out=y[:n])
            np.add(y[:n], np.array([p[3] for p in params], np.float32)[:, None, None], out=y[:n])
        if out.dtype == np.float16:
            to_float16(y[:n], out=image[i0:i0 + n], scratch=bits[:n])   # clamps to 0..1; numpy's cast is scalar
        else:
            image[i0:i0 + n] = np.clip(y[:n], np.float32(0.0), np.float32(1.0), out=y[:n])
    return _reorient(out, display_transform(first.orientation)), keep


def _decoded(h: DicomHeader, cache: dict[str, np.ndarray]) -> np.ndarray:
    if h.path not in cache:
        cache[h.path] = decode_with_pydicom(h)
    return cache[h.path]


def _f(v: float | None, default: float) -> float:
    return default if v is None else float(v)


def _spacing(h: DicomHeader) -> tuple[float, float] | None:
    return tuple(h.pixel_spacing[:2]) if h.pixel_spacing and len(h.pixel_spacing) >= 2 else None


def nifti_candidates(idx: ExamIndex, cfg: IngestConfig, volumes: dict[str, tuple]) -> list[Candidate]:
    """3-D NIfTI files as candidates (axial by construction after reorientation); loads them into ``volumes``."""
    out = []
    for name in idx.pending(idx.niftis):
        loaded = idx.read(name, read_nifti)
        if loaded is None:
            continue
        vol, spacing, z = loaded
        if vol.shape[0] < cfg.min_slices:
            idx.exclude(name, "too_few_slices", f"NIfTI volume has {vol.shape[0]} slice(s), fewer than min_slices "
                                                f"{cfg.min_slices}")
            continue
        volumes[name] = (vol, spacing, z)
        word = find_word(Path(name).name, cfg.contrast_words)
        out.append(Candidate(f"nifti:{name}", [name], None, None, vol.shape[0], spacing[0], "NIfTI header",
                             "unknown", "a NIfTI volume (no kernel information)", bool(word),
                             f"contrast keyword '{word}' in the file name" if word else "no contrast keyword"))
    return out


def nifti_volume(vol: np.ndarray, spacing: tuple[float, float, float], cfg: IngestConfig, dtype=np.float32
                 ) -> tuple[np.ndarray, list[int]]:
    """Windowed, resized float32 [S, H, W] of a NIfTI volume (HU, or percentile-windowed raw values)."""
    keep = subsample(vol.shape[0], cfg.max_slices)
    resizer = Resizer.for_image(vol.shape[1], vol.shape[2], cfg.image_size, cfg.letterbox, spacing[1:])
    sel = vol[keep]                                                     # [S, Y, X]
    if cfg.nifti_values == "hu":
        lo, hi = cfg.ct_window
    else:
        lo, hi = (float(v) for v in np.percentile(sel[:, ::4, ::4], cfg.xray_percentiles))
        hi = hi if hi > lo else lo + 1.0
    win = ct_window(sel, 1.0, 0.0, lo, hi)
    out = np.zeros((len(keep), *resizer.out_shape), dtype)
    for i0 in range(0, len(keep), _CHUNK):
        y = resizer(np.ascontiguousarray(win[i0:i0 + _CHUNK]))
        resizer.region(out)[i0:i0 + _CHUNK] = np.clip(y, 0.0, 1.0, out=y)
    return out, keep


def process_ct(idx: ExamIndex, cfg: IngestConfig, dtype=np.float32
               ) -> tuple[list[tuple[dict, np.ndarray]], list[str]]:
    """Choose, read and window the exam's CT series (arrays of ``dtype``); sets every candidate file's outcome."""
    volumes: dict[str, tuple] = {}
    candidates = dicom_candidates(idx, cfg) + nifti_candidates(idx, cfg, volumes)
    names_by_path = {str(p): n for n, p in idx.paths.items()}
    warnings: list[str] = []
    built: dict[str, tuple[Choice, np.ndarray, list[int]]] = {}
    while True:                      # a series that fails to decode is dropped and the choice is made again
        choices, not_kept = choose(candidates, cfg)
        failed = None
        for ch in choices:
            if ch.role in built:
                continue
            c = ch.candidate
            try:
                built[ch.role] = (ch, *(dicom_volume(c, cfg, dtype) if c.stack is not None else
                                        nifti_volume(*volumes[c.names[0]][:2], cfg, dtype)))
            except BadFile as exc:
                failed = (c, exc)
                break
        if failed is None:
            break
        c, exc = failed
        bad = names_by_path.get(exc.path or "", c.names[0])
        for n in c.names:
            if n == bad:
                idx.quarantine(n, exc.code, exc.text)
            else:
                idx.exclude(n, "series_unreadable", f"{c.label()} was dropped: its file {bad} could not be read")
        warnings.append(f"{c.label()} could not be read ({exc.code}); the next-ranked series was tried")
        candidates.remove(c)
    kept = {ch.candidate.key for ch, _, _ in built.values()}
    for c in candidates:
        if c.key not in kept:
            for n in c.names:
                idx.exclude(n, "not_chosen", not_kept.get(c.key, f"{c.describe()} was not kept"))
    images = []
    for role in ("nc", "ce"):
        if role in built:
            ch, vol, keep = built[role]
            for n in ch.candidate.names:
                idx.use(n)
            warnings.extend(ch.warnings)
            images.append(_entry(ch, vol, keep, cfg, names_by_path, volumes))
    return pad_together(images), warnings


def _entry(ch: Choice, vol: np.ndarray, keep: list[int], cfg: IngestConfig, names_by_path: dict[str, str],
           volumes: dict[str, tuple]) -> tuple[dict, np.ndarray]:
    """The ImageEntry of a built volume (see docs/ingest-cache.md); ``array``/``sha256`` are added by the cache."""
    c = ch.candidate
    n_true = c.n_slices
    warnings = list(ch.warnings)
    if len(keep) < n_true:
        warnings.append(f"subsampled evenly from {n_true} to {len(keep)} slices (max_slices {cfg.max_slices})")
    if c.stack is not None:
        slices = [c.stack.slices[k] for k in keep]
        first = slices[0].header
        dy, dx = _spacing(first) or (None, None)
        size_in = (first.rows, first.cols)
        dz = c.stack.spacing_z
        uids = [s.uid for s in slices]
        files = [names_by_path.get(s.header.path, Path(s.header.path).name) for s in slices]
        z = [round(c.stack.z_mm[k], 3) for k in keep]
        transform = display_transform(first.orientation)
        series_uid = c.key
    else:
        src, (dz, dy, dx), z_all = volumes[c.names[0]]
        size_in = src.shape[1:]
        uids, files, series_uid, transform = [], list(c.names), None, (False, False, False)
        z = [round(z_all[k], 3) for k in keep]
    if transform[0]:
        dy, dx, size_in = dx, dy, size_in[::-1]
    if dz is not None and 1 < len(keep) < n_true:
        dz = dz * (n_true - 1) / (len(keep) - 1)
    out_h, out_w = vol.shape[1:]
    spacing = [_r(dz), _r(dy * size_in[0] / out_h) if dy else None, _r(dx * size_in[1] / out_w) if dx else None]
    if cfg.letterbox:
        scale = max(size_in[0] * (dy or 1.0), size_in[1] * (dx or 1.0)) / out_h
        spacing[1:] = [_r(scale) if dy else None, _r(scale) if dx else None]
    entry = {"role": ch.role, "shape": list(vol.shape), "dtype": vol.dtype.name, "true_slices": len(keep),
             "spacing_mm": spacing, "source_uids": uids, "series_uid": series_uid, "chosen_by": ch.chosen_by,
             "why": ch.why, "warnings": warnings, "modality": "CT", "series_number": c.number,
             "thickness_mm": _r(c.thickness), "kernel_class": c.kernel_class, "contrast": c.contrast,
             "slice_z_mm": z, "source_slices": n_true, "source_files": files,
             "window": {"kind": "ct", "level": cfg.ct_window_level, "width": cfg.ct_window_width},
             "reoriented": {"transpose": transform[0], "flip_rows": transform[1], "flip_cols": transform[2]}}
    return entry, vol


def pad_together(images: list[tuple[dict, np.ndarray]]) -> list[tuple[dict, np.ndarray]]:
    """Zero-pad every volume at its inferior end to the longest one (SPEC: NC and CE of one exam)."""
    if len(images) < 2:
        return images
    depth = max(v.shape[0] for _, v in images)
    out = []
    for entry, vol in images:
        if vol.shape[0] < depth:
            vol = np.concatenate([vol, np.zeros((depth - vol.shape[0], *vol.shape[1:]), vol.dtype)])
            entry = {**entry, "shape": list(vol.shape)}
        out.append((entry, vol))
    return out


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)
