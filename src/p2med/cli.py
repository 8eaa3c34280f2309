"""The one CLI: ``p2med <command> ...``. Each command lives in a module with ``add_arguments`` and ``run``.

Only commands that work are registered, so ``p2med --help`` is the list of what the toolkit can do.
A ``P2MedError`` (bad input, bad config) prints one line and exits 2; ``run`` returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from . import __version__
from .common.errors import P2MedError

# name -> (module, one-line help); order is the pipeline's order.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("p2med.synth.cli", "write a synthetic hospital export with planted findings and PHI"),
    "import": ("p2med.importers.cli", "convert a public dataset (IMCS-21, IU X-ray, Kermany, DICOM, ...) "
                                      "into an export"),
    "validate": ("p2med.export.cli", "check an export against the schema, one line per problem"),
    "deid": ("p2med.deid.cli", "de-identify an export (DICOM + Chinese text) with a key; --verify scans for leaks"),
    "ingest": ("p2med.imaging.cli", "turn every radiology exam of an export into model-ready arrays (a cache)"),
    "dedup": ("p2med.curate.dedup_cli", "near-duplicate clusters of text records (MinHash + LSH + exact Jaccard)"),
    "build": ("p2med.curate.cli", "export + ingest cache -> training stages 1-3 and the benchmark"),
    "review": ("p2med.curate.review_cli", "apply the specialists' verdicts to the benchmark"),
    "train": ("p2med.train.cli", "train the model through its three stages (one CPU, one GPU, or torchrun)"),
    "eval": ("p2med.eval.cli", "score a model on the six-task benchmark: judge, clinical and NLG metrics, report"),
    "compare": ("p2med.eval.compare", "compare two evaluation runs on the same samples (paired statistics)"),
    "ablate": ("p2med.eval.ablation", "tables shaped like the paper's Tables I-IV from model variants"),
    "model-info": ("p2med.model.cli", "count a model config's parameters exactly (meta device), e.g. --preset paper"),
    "serve": ("p2med.serve.cli", "serve a checkpoint on 127.0.0.1: OpenAI-compatible API, clinician page, audit"),
    "user": ("p2med.serve.users", "create, list or revoke the server's users and their API tokens"),
    "demo": ("p2med.demo.cli", "run the pipeline end to end on the embedded synthetic hospital"),
}


def first_paragraph(doc: str | None) -> str:
    """A module docstring's first paragraph as one line (a sentence may wrap over several lines)."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2med", description="P2Med: pediatric medical multimodal LLM toolkit (see README.md).")
    parser.add_argument("--version", action="version", version=f"p2med {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=first_paragraph(mod.__doc__) or help_text)
        mod.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:                      # key=value overrides may also follow the options (argparse stops at them)
        if not hasattr(args, "overrides") or any("=" not in e or e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides or []) + extra
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except P2MedError as exc:
        print(f"p2med {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"p2med {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
