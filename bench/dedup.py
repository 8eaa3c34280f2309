"""Benchmark: our near-deduplication (vectorised MinHash + banded LSH + exact Jaccard) against datasketch.

    PYTHONPATH=src python bench/dedup.py                 # 50,000 records both ways, then 684,758 ours alone
    PYTHONPATH=src python bench/dedup.py --scale 0       # skip the large run (--small 0: skip the comparison)

The corpus (``bench/dedup_corpus.py``, cached in the temp folder) is synthetic-hospital outpatient text: 3% of
the records have a planted copy at Jaccard 0.85-1.0, 3% a hard negative at 0.6-0.84, and the templates make
natural near-duplicates. Each method runs in its own subprocess on the same file; every 50 ms a sampler in
this process adds up the memory of that subprocess and of the workers it forks. "Peak RSS" (the JSON's
``*_peak_rss_gib``) is the largest such sum of proportional set sizes (PSS: resident pages, a page shared by
k processes counted 1/k in each), i.e. the resident memory of the whole job with shared pages counted once.
Plain RSS summed over the processes counts every page a forked worker inherited again in that worker, so it
overstates a forking job; it is printed beside it, with the largest single process's RSS. Times are wall
seconds from the first record read to the clusters, both reading the same file; records/s = records /
seconds. The 1-minute load average before each run and the CPU seconds used are printed: the machine's two
cores are shared, and wall time stretches when other jobs run.

- ours: ``p2med.curate.dedup.dedup(records, DedupConfig())`` (2 processes, 256 permutations, 32 x 8).
- datasketch: the same normalisation and 5-gram sets; ``MinHash.generator(..., num_perm=256)`` (its bulk path)
  and ``MinHashLSH(num_perm=256, params=(32, 8))``; every candidate ``query`` returns is checked by exact
  Jaccard on Python sets of 5-gram strings; union-find. Too-short rule and threshold as ours.

Precision and recall are on pairs, against exact Jaccard recomputed here with Python sets of 5-gram strings:
- recall: among the planted copies whose exact Jaccard with their original is >= 0.85, the share that ends
  up in the same cluster as the original;
- precision: among all pairs a method declares duplicates (the pairs it verified, not the transitive closure
  of its clusters), the share whose exact Jaccard is >= 0.85. Both methods verify every pair they declare,
  so this checks the verifier; what the banding alone would give ("candidate precision": candidates that
  are duplicates) and hard negatives that ended in one cluster are printed too.
The last line is one JSON object with the keys the issue names.
"""

from __future__ import annotations

import argparse
import json
from array import array
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedup_corpus import corpus, read_corpus  # noqa: E402

THRESHOLD, NGRAM, MIN_NGRAMS, PERMS, BANDS, ROWS = 0.85, 5, 5, 256, 32, 8


def _cpu() -> float:
    """CPU seconds of this process and its finished workers."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def shingle_set(text: str) -> set[str]:
    from p2med.curate.minhash import normalise
    t = normalise(text)
    return {t[i:i + NGRAM] for i in range(len(t) - NGRAM + 1)}


def run_ours(path: Path) -> dict:
    from p2med.curate.dedup import DedupConfig, dedup
    start = time.perf_counter()
    result = dedup(read_corpus(path), DedupConfig(), progress=False)
    seconds = time.perf_counter() - start
    s = result.stats
    return {"seconds": seconds, "cpu": _cpu(), "records": s.records,
            "engine_seconds": s.seconds["hash"] + s.seconds["lsh"], "clusters": [c.members for c in result.clusters],
            "pairs": [[a, b] for a, b, _ in result.pairs], "candidates": s.candidates,
            "info": {"phases": {k: round(v, 2) for k, v in s.seconds.items()}, "colliding_pairs": s.colliding_pairs,
                     "giant_buckets": s.giant_buckets, "candidates": s.candidates,
                     "jaccard_checks": s.jaccard_checks, "duplicate_pairs": s.duplicate_pairs,
                     "too_short": s.too_short}}


def run_datasketch(path: Path) -> dict:
    from datasketch import MinHash, MinHashLSH
    start = time.perf_counter()
    ids, sets = [], []
    for rid, text in read_corpus(path):
        s = shingle_set(text)
        if len(s) >= MIN_NGRAMS:
            ids.append(rid)
            sets.append(s)
    t_minhash = time.perf_counter()
    hashes = list(MinHash.generator(([g.encode("utf-8") for g in s] for s in sets), num_perm=PERMS, seed=1))
    t_lsh = time.perf_counter()
    lsh = MinHashLSH(num_perm=PERMS, params=(BANDS, ROWS))
    with lsh.insertion_session() as session:
        for k, m in enumerate(hashes):
            session.insert(k, m)
    t_verify = time.perf_counter()
    parent = list(range(len(ids)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    found = array("q")                                 # candidate pairs as k * n + c
    n = len(ids)
    for k, m in enumerate(hashes):
        found.extend(k * n + c for c in lsh.query(m) if c > k)
    t_exact = time.perf_counter()
    pairs = []
    for code in found:
        k, c = divmod(code, n)
        a, b = sets[k], sets[c]
        if len(a & b) >= THRESHOLD * len(a | b):
            pairs.append([ids[k], ids[c]])
            ra, rc = find(k), find(c)
            if ra != rc:
                parent[max(ra, rc)] = min(ra, rc)
    candidates = len(found)
    groups: dict[int, list[str]] = {}
    for k in range(len(ids)):
        groups.setdefault(find(k), []).append(ids[k])
    end = time.perf_counter()
    return {"seconds": end - start, "cpu": _cpu(), "records": len(ids), "pairs": pairs, "candidates": candidates,
            "clusters": [sorted(g) for g in groups.values() if len(g) > 1],
            "engine_seconds": t_exact - start,
            "info": {"phases": {"read+shingle": round(t_minhash - start, 2), "minhash": round(t_lsh - t_minhash, 2),
                                "lsh insert": round(t_verify - t_lsh, 2), "query": round(t_exact - t_verify, 2),
                                "exact jaccard": round(end - t_exact, 2)},
                     "candidates": candidates, "duplicate_pairs": len(pairs)}}


def measure(method: str, path: Path) -> dict:
    """Run one method in a subprocess; sample its (and its children's) memory while it runs."""
    import psutil
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.Popen([sys.executable, __file__, "--run", method, "--corpus", str(path),
                                 "--result", str(out)])
        load = os.getloadavg()[0]
        peak_rss = peak_pss = peak_one = 0
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            rss = pss = 0
            try:
                for p in [root] + root.children(recursive=True):
                    try:
                        info = p.memory_full_info()
                        rss, pss, peak_one = rss + info.rss, pss + info.pss, max(peak_one, info.rss)
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        pass
            except psutil.NoSuchProcess:
                break
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.05)
        if proc.wait() != 0:
            raise SystemExit(f"bench: the {method} run failed")
        result = json.loads(out.read_text())
    result.update(peak_rss_gib=peak_pss / 2 ** 30, rss_sum_gib=peak_rss / 2 ** 30, rss_one_gib=peak_one / 2 ** 30,
                  load=load)
    return result


def quality(result: dict, path: Path, truth: Path, texts: dict[str, str] | None = None) -> dict:
    texts = texts or dict(read_corpus(path))
    planted = [json.loads(line) for line in truth.read_text().splitlines()]
    cluster_of = {m: k for k, c in enumerate(result["clusters"]) for m in c}
    cache: dict[str, set] = {}

    def exact(a: str, b: str) -> float:
        sa = cache.setdefault(a, shingle_set(texts[a]))
        sb = cache.setdefault(b, shingle_set(texts[b]))
        return len(sa & sb) / len(sa | sb)
    positives = [p for p in planted if exact(p["original"], p["copy"]) >= THRESHOLD]
    found = sum(cluster_of.get(p["original"], -1) == cluster_of.get(p["copy"], -2) for p in positives)
    negatives = [p for p in planted if p["kind"] == "hard_negative"]
    merged = sum(cluster_of.get(p["original"], -1) == cluster_of.get(p["copy"], -2) for p in negatives)
    correct = sum(exact(a, b) >= THRESHOLD for a, b in result["pairs"])
    return {"precision": correct / max(1, len(result["pairs"])), "recall": found / max(1, len(positives)),
            "positives": len(positives), "found": found, "negatives": len(negatives), "negatives_merged": merged,
            "declared": len(result["pairs"]), "candidate_precision": correct / max(1, result["candidates"])}


def show(name: str, r: dict, q: dict | None) -> None:
    print(f"{name:11s} {r['records']:>9,} records  {r['seconds']:7.2f} s  {r['records'] / r['seconds']:>9,.0f} "
          f"records/s  peak RSS {r['peak_rss_gib']:.2f} GiB (PSS summed; RSS summed {r['rss_sum_gib']:.2f}, "
          f"largest process {r['rss_one_gib']:.2f})  {len(r['clusters']):,} clusters")
    print(f"{'':11s} CPU {r['cpu']:.1f} s; load average before the run {r['load']:.1f}")
    print(f"{'':11s} {json.dumps(r['info'], ensure_ascii=False)}")
    if q:
        print(f"{'':11s} precision {q['precision']:.4f} ({q['declared']:,} declared pairs), recall "
              f"{q['recall']:.4f} ({q['found']:,} of {q['positives']:,} planted pairs at J >= {THRESHOLD}), "
              f"hard negatives in one cluster {q['negatives_merged']} of {q['negatives']:,}, candidate precision "
              f"{q['candidate_precision']:.4f}")


def compare(n: int) -> dict:
    """Ours and datasketch on the same n-record corpus; returns their JSON figures."""
    small, small_truth = corpus(n, seed=1)
    print(f"corpus: {small} ({n:,} records)")
    texts = dict(read_corpus(small))
    ours = measure("ours", small)
    q_ours = quality(ours, small, small_truth, texts)
    show("ours", ours, q_ours)
    ds = measure("datasketch", small)
    q_ds = quality(ds, small, small_truth, texts)
    show("datasketch", ds, q_ds)
    same = sorted(map(sorted, ours["clusters"])) == sorted(map(sorted, ds["clusters"]))
    ratio = (ours["records"] / ours["seconds"]) / (ds["records"] / ds["seconds"])
    print(f"ratio {ratio:.1f}x records/s; identical clusters: {same}")
    engine = (ours["records"] / ours["engine_seconds"]) / (ds["records"] / ds["engine_seconds"])
    print(f"MinHash + LSH alone (reading, hashing, bucketing; no exact Jaccard): ours "
          f"{ours['records'] / ours['engine_seconds']:,.0f} records/s, datasketch "
          f"{ds['records'] / ds['engine_seconds']:,.0f} records/s, ratio {engine:.1f}x")
    return {"ours_records_per_s": round(ours["records"] / ours["seconds"], 1),
            "datasketch_records_per_s": round(ds["records"] / ds["seconds"], 1), "ratio": round(ratio, 2),
            "ours_precision": round(q_ours["precision"], 6), "ours_recall": round(q_ours["recall"], 6),
            "datasketch_precision": round(q_ds["precision"], 6), "datasketch_recall": round(q_ds["recall"], 6)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=50_000, help="records compared with datasketch (0: skip)")
    ap.add_argument("--scale", type=int, default=684_758, help="records for ours alone (0: skip)")
    ap.add_argument("--run", choices=["ours", "datasketch"], help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:                                      # subprocess mode
        fn = run_ours if args.run == "ours" else run_datasketch
        args.result.write_text(json.dumps(fn(args.corpus), ensure_ascii=False))
        return
    summary = dict.fromkeys(("ours_records_per_s", "datasketch_records_per_s", "ratio", "ours_precision",
                             "ours_recall", "datasketch_precision", "datasketch_recall"))
    summary.update(scale_records=0, scale_seconds=None, scale_peak_rss_gib=None)
    if args.small:
        summary.update(compare(args.small))
    if args.scale:
        big, big_truth = corpus(args.scale, seed=2)
        print(f"corpus: {big} ({args.scale:,} records)")
        scale = measure("ours", big)
        show("ours", scale, quality(scale, big, big_truth))
        summary.update(scale_records=scale["records"], scale_seconds=round(scale["seconds"], 2),
                       scale_peak_rss_gib=round(scale["peak_rss_gib"], 3))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
