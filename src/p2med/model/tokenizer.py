"""Tokenizers: train a small byte-level BPE on an export's text (tiny preset), or load one from a local folder.

No pretrained tokenizer can be downloaded here, so the tiny CPU model gets its own: byte-level BPE (every
string round-trips, Chinese included; frequent characters and words become single tokens) trained with HF
``tokenizers`` and wrapped as a transformers fast tokenizer with ``<s>``, ``</s>`` (EOS = the template's stop
token) and ``<pad>``. Train it on de-identified text: a merge needs ``min_frequency`` occurrences, which keeps
one-off strings out of the vocabulary, but a checkpoint's tokenizer is as private as the text it learnt from.

Example::

    tok = train_tokenizer(export_texts("runs/h"), vocab_size=4096)
    tok.decode(tok("右肺下野斑片影")["input_ids"]) == "右肺下野斑片影"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from ..common.errors import P2MedError
from ..common.optional import require
from ..export.schema import SECTIONS

SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096, min_frequency: int = 3) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (plus the section headers and roles)."""
    tk = require("tokenizers", "train")
    transformers = require("transformers", "train")
    bpe = tk.Tokenizer(tk.models.BPE())
    bpe.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                     special_tokens=list(SPECIALS.values()),
                                     initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    headers = [f"[{zh}] [{en}] Human: Assistant:" for zh, en in SECTIONS.values()]
    bpe.train_from_iterator(_chain(headers, texts), trainer=trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, **SPECIALS)


def _chain(first: list[str], rest: Iterable[str]) -> Iterator[str]:
    yield from first
    yield from (t for t in rest if t)


def export_texts(export_dir: str | Path) -> Iterator[str]:
    """Every report and record section of an export (the text a tiny tokenizer should cover)."""
    from ..export.tables import Export

    export = Export.open(export_dir)
    for table in ("exams", "records"):
        for row in export.load(table):
            for key in SECTIONS:
                if isinstance(row.get(key), str):
                    yield row[key]


def load_tokenizer(folder: str | Path, field: str) -> Any:
    """A tokenizer from a local folder; ``field`` names the config entry that pointed here (for errors)."""
    transformers = require("transformers", "train")
    if not Path(folder, "tokenizer_config.json").is_file() and not Path(folder, "tokenizer.json").is_file():
        raise P2MedError(f"{field}: {folder} holds no tokenizer (tokenizer.json / tokenizer_config.json); put the "
                         "model's tokenizer files there or set tokenizer.path")
    return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
