"""Chinese NLG metrics: hand-computed values on fixed pairs, never 0 for overlapping Chinese text, METEOR
equal to nltk's and CIDEr-D equal to pycocoevalcap's on the same character tokens."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from p2med.eval.metrics import corpus_bleu, cider_d, meteor, nlg_scores, rouge_l, sentence_bleu, tokens

REF, HYP = "双肺纹理清晰", "双肺纹理增多"  # 4 of 6 characters shared, in one run


def test_tokens_split_chinese_into_characters():
    assert tokens("右肺下野斑片影，CRP 12.5mg/L", "zh") == list("右肺下野斑片影") + ["crp", "12.5", "mg", "l"]
    assert tokens("Right lower-lobe opacity.", "en") == ["right", "lower", "lobe", "opacity"]


def test_known_values_on_fixed_pairs():
    # BLEU-4 by hand: precisions 4/6, 3/5, 2/4, 1/3, brevity penalty 1
    bleu4 = math.exp(sum(math.log(p) for p in (4 / 6, 3 / 5, 2 / 4, 1 / 3)) / 4)
    assert sentence_bleu(HYP, REF, "zh", 4) == pytest.approx(bleu4, abs=1e-4)
    assert corpus_bleu([HYP], [REF], "zh", 4) == pytest.approx(bleu4, abs=1e-4)
    assert sentence_bleu(HYP, REF, "zh", 1) == pytest.approx(4 / 6, abs=1e-4)
    assert sentence_bleu(HYP, REF, "zh", 2) == pytest.approx(math.sqrt(4 / 6 * 3 / 5), abs=1e-4)
    # ROUGE-L: LCS 4 of 6 on both sides
    assert rouge_l(HYP, REF, "zh") == pytest.approx(4 / 6, abs=1e-6)
    # METEOR: P = R = 4/6, one chunk of 4 matches -> penalty 0.5 * (1/4)^3
    assert meteor(HYP, REF, "zh") == pytest.approx(4 / 6 * (1 - 0.5 / 64), abs=1e-6)
    for f in (rouge_l, meteor):
        assert f(REF, REF, "zh") == pytest.approx(1.0 if f is rouge_l else 1 - 0.5 / 6 ** 3, abs=1e-6)
    assert sentence_bleu(REF, REF, "zh") == pytest.approx(1.0)
    assert rouge_l("完全不同", REF, "zh") == 0.0


def test_stock_tokenizers_would_score_chinese_zero():
    """The reason for the character tokenizer: the defaults see one token (or none) per Chinese phrase."""
    import sacrebleu
    from rouge_score import rouge_scorer

    assert sacrebleu.sentence_bleu(HYP, [REF], tokenize="13a").score < 1
    assert rouge_scorer.RougeScorer(["rougeL"]).score(REF, HYP)["rougeL"].fmeasure == 0.0


CJK = hs.text(alphabet=hs.sampled_from(list("双肺纹理清晰增多右左下上野斑片影实变胸腔积液未见异常心膈")), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(CJK, CJK, CJK)
def test_never_zero_for_overlapping_chinese(shared, a, b):
    hyp, ref = a + shared, shared + b
    assert rouge_l(hyp, ref, "zh") > 0 and meteor(hyp, ref, "zh") > 0
    assert all(sentence_bleu(hyp, ref, "zh", k) > 0 for k in (1, 2, 3, 4))


def test_meteor_equals_nltk():
    from nltk.translate.meteor_score import meteor_score

    class NoSynonyms:  # nltk would look up English WordNet; Chinese has no such module
        def synsets(self, *args, **kwargs):
            return []

    class Identity:
        def stem(self, word):
            return word

    pairs = [(HYP, REF), ("右肺下野斑片影，考虑支气管肺炎", "右肺下野见斑片状模糊影，支气管肺炎"),
             ("左侧胸腔积液", "右侧胸腔少量积液，左肺下叶实变"), ("心肺膈未见明显异常", "心肺未见异常")]
    for hyp, ref in pairs:
        ref_nltk = meteor_score([tokens(ref, "zh")], tokens(hyp, "zh"), stemmer=Identity(), wordnet=NoSynonyms())
        assert meteor(hyp, ref, "zh") == pytest.approx(ref_nltk, abs=1e-6)


def test_cider_equals_pycocoevalcap_with_corpus_idf():
    cider_mod = pytest.importorskip("pycocoevalcap.cider.cider")
    hyps = ["右肺下野斑片影", "双肺纹理增多", "左侧胸腔积液，左肺下叶实变", "心肺膈未见明显异常"]
    refs = ["右肺下野斑片影，考虑支气管肺炎", "双肺纹理清晰", "左侧胸腔积液", "心肺未见异常"]
    corpus, per = cider_d(hyps, refs, "zh")
    gts = {i: [" ".join(tokens(r, "zh"))] for i, r in enumerate(refs)}
    res = {i: [" ".join(tokens(h, "zh"))] for i, h in enumerate(hyps)}
    ref_corpus, ref_per = cider_mod.Cider().compute_score(gts, res)
    assert corpus == pytest.approx(ref_corpus, abs=1e-5)
    assert per == pytest.approx(list(ref_per), abs=1e-5)
    # IDF is corpus-level: the same pair scores differently inside another corpus, and alone it is undefined
    assert cider_d(hyps[:2], refs[:2], "zh")[1][0] != pytest.approx(per[0])
    assert cider_d(hyps[:1], refs[:1], "zh") == (None, [None])


def test_nlg_scores_shape():
    out = nlg_scores([HYP, "右肺下野斑片影"], [REF, "右肺下野斑片影"], "zh")
    assert set(out) == {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "meteor", "cider"}
    assert all(len(v) == 2 for v in out.values()) and out["rouge_l"][1] == 1.0
