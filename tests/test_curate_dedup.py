"""Near-deduplication: planted duplicates found, hard negatives kept apart, agreement with exact all-pairs
Jaccard (synthetic and real IMCS-21 text), order independence, too-short records, the CLI's files."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest
from conftest import shared_data
from hypothesis import given, settings
from hypothesis import strategies as st

from p2med.cli import main
from p2med.common.errors import P2MedError
from p2med.config import ConfigError, load_config
from p2med.curate.dedup import DedupConfig, dedup
from p2med.curate.lsh import collision_probability, min_agreement
from p2med.curate.minhash import Permutations, ngram_sets, normalise, signatures
from p2med.curate.verify import jaccard
from p2med.export.tables import Export
from p2med.synth.config import SynthConfig
from p2med.synth.hospital import OUTPATIENT_KEYS, _Planner
from p2med.synth.near_dups import mutate, record_text, shingles

FAST = DedupConfig(workers=1)
LITERAL = DedupConfig(workers=1, sketch_bits=0, max_bucket=0)   # every colliding pair checked exactly


def exact_components(records: list[tuple[str, str]], threshold: float = 0.85):
    """Pairs at or above the threshold by brute force over Python sets of 5-gram strings, and the
    clusters they form: the reference every run is compared with."""
    sets = {rid: shingles(text) for rid, text in records}
    ids = [rid for rid, _ in records if len(sets[rid]) >= 5]
    pairs = {}
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            sa, sb = sets[ids[a]], sets[ids[b]]
            if min(len(sa), len(sb)) >= threshold * max(len(sa), len(sb)):
                j = len(sa & sb) / len(sa | sb)
                if j >= threshold:
                    pairs[tuple(sorted((ids[a], ids[b])))] = j
    parent = {i: i for i in ids}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x
    for a, b in pairs:
        parent[max(find(a), find(b))] = min(find(a), find(b))
    groups: dict[str, list[str]] = {}
    for i in ids:
        groups.setdefault(find(i), []).append(i)
    return pairs, sorted(sorted(g) for g in groups.values() if len(g) > 1), sets


def check_against_exact(result, records, threshold=0.85, min_recall=0.98):
    pairs, components, sets = exact_components(records, threshold)
    for a, b, j in result.pairs:                          # precision: every reported pair is exact
        assert j >= threshold and abs(j - pairs[tuple(sorted((a, b)))]) < 1e-12
    cluster_of = {m: k for k, c in enumerate(result.clusters) for m in c.members}
    for c in result.clusters:                             # no cluster reaches outside an exact component
        assert any(set(c.members) <= set(comp) for comp in components)
        best = max(len(sets[m]) for m in c.members)       # the kept rule
        assert c.kept == min(m for m in c.members if len(sets[m]) == best)
    together = [cluster_of.get(a, -1) == cluster_of.get(b, -2) for a, b in pairs]
    assert all(t for (a, b), t in zip(pairs, together) if pairs[(a, b)] >= 0.9)   # missed w.p. ~1e-8 each
    if pairs:
        assert sum(together) / len(pairs) >= min_recall
    return pairs, components


@pytest.fixture(scope="module")
def outpatient_corpus() -> list[tuple[str, str]]:
    """The outpatient records of 60 planned patients; copies of 90 of them at J 0.85-1.0, 0.6-0.84 (hard
    negatives) and 0.88-0.97; a copy that differs only in spacing; two too-short records."""
    cfg = SynthConfig(patients=60, seed=11)
    planner = _Planner(cfg)
    rows = [r for i in range(cfg.patients) for r in planner.patient(i).records if r["task"] == "outpatient"]
    rng = np.random.default_rng(5)
    records = [(r["record_id"], record_text(r, OUTPATIENT_KEYS)) for r in rows]
    for k, r in enumerate(rows[:90]):
        band = [(0.85, 1.0), (0.6, 0.84), (0.88, 0.97)][k % 3]
        made = mutate(rng, r, OUTPATIENT_KEYS, band)
        if made:
            records.append((f"{r['record_id']}-{k % 3}", record_text(made[0], OUTPATIENT_KEYS)))
    records += [("X-1", records[0][1].replace("，", " ， ")), ("X-2", "咳嗽"), ("X-3", "哈哈哈哈哈哈哈哈哈")]
    return records


def test_planted_duplicates_found_and_hard_negatives_not_merged(small_hospital):
    export, truth = small_hospital
    rows = [r for r in Export.open(export).load("records") if r["task"] == "outpatient"]
    records = [(r["record_id"], record_text(r, OUTPATIENT_KEYS)) for r in rows]
    planted = [json.loads(line) for line in (truth / "duplicates.jsonl").read_text().splitlines()]
    assert {p["kind"] for p in planted} == {"duplicate", "hard_negative"}
    result = dedup(records, DedupConfig())                # two processes, the default banding
    cluster_of = {m: k for k, c in enumerate(result.clusters) for m in c.members}
    for p in planted:
        same = cluster_of.get(p["original"], -1) == cluster_of.get(p["copy"], -2)
        assert same == (p["kind"] == "duplicate"), p
    assert set(result.dropped) == {m for c in result.clusters for m in c.members if m != c.kept}
    check_against_exact(result, records, min_recall=1.0)


@pytest.mark.parametrize("cfg", [FAST, LITERAL], ids=["default", "literal"])
def test_agrees_with_exact_all_pairs_jaccard(outpatient_corpus, cfg):
    result = dedup(outpatient_corpus, cfg)
    pairs, components = check_against_exact(result, outpatient_corpus)
    assert len(pairs) >= 40 and result.stats.duplicate_pairs >= 40          # the corpus has duplicates
    assert sorted(result.too_short) == ["X-2", "X-3"]
    s = result.stats
    assert s.candidates <= s.colliding_pairs and s.jaccard_checks <= s.candidates
    assert s.dropped == len(result.dropped) == sum(len(c.members) - 1 for c in result.clusters)


def test_same_clusters_whatever_the_order_and_workers(outpatient_corpus):
    first = dedup(outpatient_corpus, FAST)
    shuffled = [outpatient_corpus[i] for i in np.random.default_rng(1).permutation(len(outpatient_corpus))]
    again = dedup(shuffled, DedupConfig(workers=2, shard_records=37))
    assert again.clusters == first.clusters and again.too_short == first.too_short
    assert again.dropped == first.dropped and again.pairs == first.pairs and again.stats.jaccard_checks == \
        first.stats.jaccard_checks
    small_rounds = dedup(shuffled, DedupConfig(workers=2, verify_batch=5))   # other pairs checked, same clusters
    assert small_rounds.clusters == first.clusters


def test_too_short_records_and_normalisation():
    records = [("a", "咳嗽"), ("b", "a b c d e f g h"), ("c", "哈哈哈哈哈哈哈哈哈哈"), ("d", "１２３４５６７８９"),
               ("e", "123456789"), ("f", "1 2 3 4\t5 6 7 8\n9"), ("g", "")]
    result = dedup(records, FAST)
    assert result.too_short == ["a", "b", "c", "g"]       # under 5 distinct 5-grams after normalisation
    assert [c.members for c in result.clusters] == [["d", "e", "f"]]   # NFKC + whitespace: identical
    assert result.clusters[0].kept == "d" and result.dropped == ["e", "f"]


def test_kept_is_the_most_complete_record_then_the_smallest_id():
    base = "患儿3天前受凉后出现咳嗽，为阵发性连声咳，有痰不易咳出，伴发热，热峰38.9℃，精神食欲可。"
    longer = base + "无抽搐。"
    result = dedup([("z", base), ("y", base), ("x", longer)], FAST)
    assert result.clusters[0].kept == "x" and result.clusters[0].members == ["x", "y", "z"]
    result = dedup([("z", base), ("y", base + " ")], FAST)
    assert result.clusters[0].kept == "y"


def test_bad_input_names_the_record_not_the_id():
    with pytest.raises(P2MedError, match=r"record 2 repeats the id of record 1") as exc:
        dedup([("MZ123", "咳嗽三天发热一天"), ("MZ123", "咳嗽三天")], FAST)
    assert "MZ123" not in str(exc.value)
    with pytest.raises(P2MedError, match="record 1: the text must be a string"):
        dedup([("a", None)], FAST)


def test_config_checks_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="permutations"):
        DedupConfig(bands=64, rows=8)
    with pytest.raises(ConfigError, match="sketch_slots"):
        DedupConfig(sketch_slots=100)
    paper = load_config(DedupConfig, "configs/dedup/paper.yaml")
    assert paper.permutations == paper.bands * paper.rows == 4096
    assert collision_probability(0.85, 32, 8) > 0.999 > collision_probability(0.85, 16, 16)


def test_minhash_agreement_estimates_jaccard(outpatient_corpus):
    """P(a slot agrees) = J for each pair: averaged over 32 seeds x 256 permutations, every pair's agreement is
    within 4.5 standard deviations of its exact Jaccard (planted near-copies and unrelated records alike)."""
    texts = [normalise(t) for _, t in outpatient_corpus[:-2]]
    values, offsets = ngram_sets(texts, 5)
    pos = {rid: k for k, (rid, _) in enumerate(outpatient_corpus[:-2])}
    planted = [(pos[rid.rsplit("-", 1)[0]], pos[rid]) for rid in pos if rid[-2:] in ("-0", "-1", "-2") and rid[0] != "X"][:24]
    pairs = np.array(planted + [(k, k + 7) for k in range(0, 160, 10)])
    exact = jaccard(values, offsets, pairs)
    agree = np.zeros(len(pairs))
    for seed in range(32):
        sig = signatures(values, offsets, Permutations.make(256, seed))
        agree += (sig[pairs[:, 0]] == sig[pairs[:, 1]]).mean(axis=1) / 32
    assert ((exact > 0.6) & (exact < 1)).sum() >= 10 and exact.min() < 0.5   # both kinds are tested
    assert np.all(np.abs(agree - exact) <= 4.5 * np.sqrt(exact * (1 - exact) / (32 * 256)) + 1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="咳嗽发热天 　１2ＡaéÅ\u0301\u0327가\u1100\u1161\t，。ﬁ℃㎏①Ⅻ¼ｶﾞ", max_size=40),
                min_size=2, max_size=6))
def test_normalise_and_exact_jaccard_match_python_sets(texts):
    assert [normalise(t) for t in texts] == ["".join(unicodedata.normalize("NFKC", t).split()) for t in texts]
    values, offsets = ngram_sets([normalise(t) for t in texts], 5)
    sets = [shingles(t) for t in texts]
    assert list(np.diff(offsets)) == [len(s) for s in sets]
    pairs = np.array([(a, b) for a in range(len(texts)) for b in range(len(texts))])
    got = jaccard(values, offsets, pairs)
    want = [len(sets[a] & sets[b]) / len(sets[a] | sets[b]) if sets[a] | sets[b] else 1.0 for a, b in pairs]
    assert np.allclose(got, want, atol=0, rtol=0)
    for bits in (48, 60):                  # truncated values (the in-memory 16-bit copy and cruder) bound it
        truncated = (values >> np.uint64(bits)).astype(np.uint16)
        assert np.all(jaccard(truncated, offsets, pairs) >= got)


def test_sketch_threshold_is_the_binomial_quantile():
    from scipy.stats import binom

    for bits in (1, 2, 4):
        c = min_agreement(256, bits, 0.85, 1e-6)
        p = 0.85 + 0.15 / 2 ** bits
        assert binom.cdf(c - 1, 256, p) <= 1e-6 < binom.cdf(c, 256, p)


def test_cli_writes_clusters_ledger_and_manifest(tmp_path, outpatient_corpus, capsys):
    lines = [json.dumps({"id": rid, "text": text}, ensure_ascii=False) for rid, text in outpatient_corpus[:40]]
    lines += [lines[0].replace('"id": "', '"id": "copy-'), "not json", json.dumps({"id": "no-text"}), "",
              json.dumps({"id": outpatient_corpus[1][0], "text": "again"}), json.dumps(["a", "list"])]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outs = []
    for name in ("out1", "out2"):
        assert main(["dedup", str(src), "--out", str(tmp_path / name), "workers=1"]) == 0
        outs.append(tmp_path / name)
    assert "quarantined" in capsys.readouterr().out
    for f in ("clusters.jsonl", "ledger.jsonl", "manifest.json"):     # independent of the output path
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes()
    clusters = [json.loads(x) for x in (outs[0] / "clusters.jsonl").read_text().splitlines()]
    assert {"members", "kept"} == set(clusters[0]) and all(c["kept"] in c["members"] for c in clusters)
    first = outpatient_corpus[0][0]
    assert any({first, "copy-" + first} <= set(c["members"]) for c in clusters)
    ledger = {r["source"]: r for r in map(json.loads, (outs[0] / "ledger.jsonl").read_text().splitlines())}
    assert sorted(ledger, key=lambda s: int(s.split(":")[1])) == [f"in.jsonl:{n}" for n in range(1, len(lines) + 1)]
    status = {int(k.split(":")[1]): (r["status"], (r["reason"] or "").split(":")[0]) for k, r in ledger.items()}
    assert status[42] == ("quarantined", "unparseable") and status[46] == ("quarantined", "unparseable")
    assert status[43] == ("quarantined", "missing_field") and status[44] == ("quarantined", "unparseable")
    assert status[45] == ("quarantined", "duplicate_id")
    dup = ledger["in.jsonl:41"] if ledger["in.jsonl:41"]["status"] == "excluded" else ledger["in.jsonl:1"]
    assert dup["reason"].startswith("near_duplicate: line ") and "kept record is line" in dup["reason"]
    for r in ledger.values():
        if r["reason"]:
            assert f"line {r['source'].split(':')[1]}" in r["reason"]
    manifest = json.loads((outs[0] / "manifest.json").read_text())
    assert [f["path"] for f in manifest["files"]] == ["clusters.jsonl", "ledger.jsonl"]
    assert manifest["counts"]["records"] == 41 and manifest["counts"]["lines"]["quarantined"] == 5


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    assert main(["dedup", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert main(["dedup", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"), "bands=99"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("p2med dedup: error:") for e in err) and "permutations" in err[1]


@pytest.mark.shared
def test_imcs21_real_text():
    path = shared_data("imcs21_mrg_1000") / "imcs21_mrg_1000.parsed.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    records = [(r["id"], "".join(r["report"].values())) for r in rows]
    result = dedup(records, DedupConfig())
    assert result.stats.records == len(rows) > 700
    check_against_exact(result, records)                  # any cluster found holds under exact Jaccard
    assert dedup(records, LITERAL).clusters == result.clusters
    # real template reports (腹泻一天。患儿一天前出现腹泻症状... at J 0.6-0.75): a lower threshold, banded for it
    low = dedup(records, DedupConfig(threshold=0.6, bands=64, rows=4))
    pairs, _ = check_against_exact(low, records, threshold=0.6, min_recall=1.0)
    assert low.clusters and pairs
