"""Burned-in text on radiographs: our pixel detector against the stock way (trusting BurnedInAnnotation, which
is all Orthanc's /anonymize, pydicom's deid recipes and dicognito look at), on a synthetic hospital whose
truth has every burned-in box.

Run: ``PYTHONPATH=src python bench/deid_burned_in.py --patients 80 --seed 11``. Prints recall on the images
with text, the false-positive rate on the plain radiographs, how much of each truth box the detection covers,
and seconds per image; when ``../shared/data`` is there, also the share of real radiographs (Kermany pediatric
JPEGs, IU X-ray PNGs; no truth) that get flagged. The last line is one JSON object with those figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from p2med.deid.burned_in import box_coverage, display_image, find_text_marks
from p2med.synth.config import SynthConfig
from p2med.synth.hospital import synthesize

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL = ("kermany_pediatric_cxr_224_sample", "iu_xray_images_mini")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=80)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SynthConfig(patients=args.patients, seed=args.seed, ct_share=0.0, burned_in_share=0.1,
                          imaging_rate_other=0.6)
        synthesize(cfg, Path(tmp) / "h", Path(tmp) / "t", progress=False)
        rows = [json.loads(x) for x in (Path(tmp) / "t" / "findings.jsonl").read_text().splitlines()]
        ours = {"tp": 0, "fp": 0, "cover": []}
        stock = {"tp": 0, "fp": 0}
        with_text = plain = 0
        seconds = 0.0
        for row in rows:
            for view in row.get("views", []):
                ds = pydicom.dcmread(Path(tmp) / "h" / "images" / row["exam_id"] / view["file"])
                t0 = time.perf_counter()
                box = find_text_marks(display_image(ds))
                seconds += time.perf_counter() - t0
                tagged = str(ds.get("BurnedInAnnotation", "")).upper() == "YES"
                truth = view["burned_in_box"]
                if truth:
                    with_text += 1
                    ours["tp"] += box is not None
                    stock["tp"] += tagged
                    if box is not None:
                        ours["cover"].append(box_coverage(box, truth))
                else:
                    plain += 1
                    ours["fp"] += box is not None
                    stock["fp"] += tagged
    n = with_text + plain
    result = {
        "images": n, "with_text": with_text, "plain": plain,
        "ours_recall": round(ours["tp"] / max(with_text, 1), 4),
        "ours_false_positive_rate": round(ours["fp"] / max(plain, 1), 4),
        "ours_mean_box_coverage": round(sum(ours["cover"]) / max(len(ours["cover"]), 1), 4),
        "tag_only_recall": round(stock["tp"] / max(with_text, 1), 4),
        "tag_only_false_positive_rate": round(stock["fp"] / max(plain, 1), 4),
        "ours_seconds_per_image": round(seconds / max(n, 1), 4),
    }
    print(f"{n} radiographs ({with_text} with burned-in text, {plain} plain), synthetic hospital seed {args.seed}")
    print(f"ours (pixels):    recall {result['ours_recall']:.3f}, false positives {ours['fp']}/{plain} "
          f"({result['ours_false_positive_rate']:.3f}), truth box covered {result['ours_mean_box_coverage']:.2f}, "
          f"{result['ours_seconds_per_image'] * 1000:.1f} ms per image")
    print(f"stock (tag only): recall {result['tag_only_recall']:.3f}, false positives {stock['fp']}/{plain} "
          "(the lateral view of a tagged exam carries the tag but no text)")
    real = [p for name in REAL for p in sorted((SHARED / name).rglob("*"))
            if p.suffix.lower() in (".png", ".jpeg", ".jpg")]
    if real:
        flagged = sum(find_text_marks(np.asarray(Image.open(p).convert("L"), dtype=np.float32) / 255.0) is not None
                      for p in real)
        result["real_images"], result["real_flagged_share"] = len(real), round(flagged / len(real), 4)
        print(f"real radiographs (../shared/data, no truth): {flagged}/{len(real)} flagged for review")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
