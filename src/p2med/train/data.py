"""A stage's training samples: the shards of ``p2med build`` (docs/dataset-format.md), tokenised once.

``load_stage(dataset, "stage1", cache)`` reads ``DATASET/stage1/samples-*.jsonl`` in name order and encodes each
conversation with the model's template (ids, labels, image slots), keeping what batching needs: the length,
whether the sample has images, its task, and its image references into the ingest cache (``array`` relative to
the cache root, ``sha256``, ``true_slices``). Pixels are read only when a batch needs them (``load_image``).
It does not know batching, features or the model; errors name the shard file and line, never a patient.

Example::

    ds = load_stage(Path("runs/ds"), "stage3", Path("runs/cache"), processor)
    ds.samples[0].length, ds.samples[0].has_images, ds.samples[0].task       # 412, True, "xray_report"
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..common.atomic import sha256_file
from ..common.errors import P2MedError
from ..model.conversation import IGNORE, encode_conversation
from ..model.processor import ImageItem


@dataclass
class ImageRef:
    array: str              # path relative to the ingest cache root
    sha256: str             # of the .npy file (the feature cache's content address)
    true_slices: int | None  # slices beyond it are zero padding
    slices: int             # slices in the array


@dataclass
class TrainSample:
    input_ids: list[int]
    labels: list[int]
    image_mask: list[bool]
    task: str
    images: list[ImageRef] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.input_ids)

    @property
    def has_images(self) -> bool:
        return bool(self.images)

    @property
    def n_targets(self) -> int:
        """Tokens the loss counts (labels after the one-token shift)."""
        return sum(1 for t in self.labels[1:] if t != IGNORE)


@dataclass
class StageData:
    name: str
    samples: list[TrainSample]
    tasks: list[str]                  # sorted task names (metrics order)


def resolve_cache(dataset: Path, images: str) -> Path:
    """The ingest cache: ``images`` if given, else the manifest's ``cache`` (absolute, relative to the working
    directory, or relative to the dataset folder)."""
    if images:
        path = Path(images)
        if not path.is_dir():
            raise P2MedError(f"images={images}: no such ingest cache folder")
        return path
    manifest = dataset / "manifest.json"
    try:
        cache = json.loads(manifest.read_text(encoding="utf-8")).get("cache")
    except (OSError, json.JSONDecodeError) as exc:
        raise P2MedError(f"{manifest}: cannot read the dataset manifest ({exc}); is {dataset} a `p2med build` "
                         "output folder?") from exc
    for cand in ([Path(cache), dataset / cache] if cache else []):
        if cand.is_dir():
            return cand
    raise P2MedError(f"{manifest}: field 'cache' = {cache!r} is not an existing folder (absolute, relative to the "
                     "working directory or to the dataset); pass images=CACHE")


def manifest_sha256(dataset: Path) -> str | None:
    path = dataset / "manifest.json"
    return sha256_file(path) if path.is_file() else None


def stage_folders(data: str) -> list[str]:
    """The dataset folders a stage's ``data`` names: ``stage1+stage2`` -> [stage1, stage2] (each once)."""
    return list(dict.fromkeys(data.split("+")))


def iter_shards(folder: Path) -> Iterator[tuple[str, int, dict]]:
    """(shard file name, line number, sample) over ``folder/samples-*.jsonl`` in name order."""
    shards = sorted(folder.glob("samples-*.jsonl"))
    if not shards:
        raise P2MedError(f"{folder}: no samples-*.jsonl shards (a stage folder of `p2med build`)")
    for shard in shards:
        with open(shard, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise P2MedError(f"{shard}:{n}: not a JSON object ({exc.msg}); shards are JSON lines") from exc
                yield shard.name, n, row


def load_stage(dataset: Path, data: str, processor: Any) -> StageData:
    """Every sample of ``dataset/data`` encoded with ``processor``'s tokenizer and conversation template."""
    folder = dataset / data
    samples, tasks = [], set()
    for shard, n, row in iter_shards(folder):
        where = f"{folder / shard}:{n}"
        for key in ("task", "lang", "turns"):
            if key not in row:
                raise P2MedError(f"{where}: field {key!r} is missing (docs/dataset-format.md)")
        turns = [{"human": t.get("human"), "assistant": t.get("assistant")} for t in row["turns"]]
        if any(t["assistant"] is None for t in turns):
            raise P2MedError(f"{where}: a training turn has no 'assistant' text")
        try:
            enc = encode_conversation(turns, processor.tokenizer, processor.conversation, processor.num_latents,
                                      row["lang"])
        except P2MedError as exc:
            raise P2MedError(f"{where}: {exc}") from exc
        refs = [image_ref(im, f"{where}: images[{i}]") for i, im in enumerate(row.get("images") or [])]
        if len(refs) != enc.n_images:
            raise P2MedError(f"{where}: {enc.n_images} <image> placeholder(s) in the turns but {len(refs)} "
                             "entries in 'images'")
        samples.append(TrainSample(enc.input_ids, enc.labels, enc.image_mask, row["task"], refs))
        tasks.add(row["task"])
    return StageData(data, samples, sorted(tasks))


def image_ref(im: dict, where: str) -> ImageRef:
    """A sample's ``images[i]`` entry as an ImageRef; ``where`` names it in errors."""
    for key in ("array", "sha256", "shape"):
        if key not in im:
            raise P2MedError(f"{where}: field {key!r} is missing")
    return ImageRef(im["array"], im["sha256"], im.get("true_slices"), int(im["shape"][0]))


def stage_texts(dataset: Path, data: str) -> Iterator[str]:
    """Every prompt and answer of a stage (what a tiny preset's tokenizer is trained on)."""
    for _, _, row in iter_shards(dataset / data):
        for turn in row.get("turns", []):
            for key in ("human", "assistant"):
                if isinstance(turn.get(key), str):
                    yield turn[key].replace("<image>", " ")


def load_image(cache: Path, ref: ImageRef) -> ImageItem:
    """The cached array (float16 [S, H, W] in 0..1) as float32, with its real slice count."""
    path = cache / ref.array
    if not path.is_file() or os.path.isabs(ref.array) or ".." in Path(ref.array).parts:
        raise P2MedError(f"image array {ref.array}: not found under the ingest cache {cache}")
    return ImageItem(np.load(path).astype(np.float32), ref.true_slices)
