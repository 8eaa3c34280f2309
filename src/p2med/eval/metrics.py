"""NLG metrics that are right for Chinese: BLEU-1..4, ROUGE-L, METEOR and CIDEr-D on characters.

Default tokenizers score Chinese as 0 (sacrebleu's ``13a`` and rouge-score's both drop or merge CJK), so Chinese
is split into characters: BLEU through sacrebleu ``tokenize="zh"``; ROUGE-L through rouge-score with a character
tokenizer; METEOR (exact matching, nltk's alignment and parameters alpha 0.9, beta 3, gamma 0.5; no synonym or
stem modules exist for Chinese) and CIDEr-D (pycocoevalcap's formula: n 1-4, sigma 6, clipped tf-idf, x10) are
implemented here on the same tokens. CIDEr's IDF is corpus-level: ``cider_d`` takes the whole component at once
and needs at least two samples. Latin words and numbers inside Chinese text stay whole tokens; punctuation is
dropped. All scores are 0..1 except CIDEr (0..10).
Example: ``rouge_l("双肺纹理增多", "双肺纹理清晰", "zh")`` -> 0.666667.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

from ..common.optional import require

TOKEN = {"zh": re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z]+|\d+(?:\.\d+)?"),
         "en": re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?|[\u3400-\u9fff]")}
BLEU_ORDERS = (1, 2, 3, 4)


def tokens(text: str, lang: str) -> list[str]:
    """Characters for Chinese, lower-cased words for English; punctuation dropped."""
    return [t.lower() for t in TOKEN[lang].findall(text or "")]


class _Tokenizer:
    """rouge-score's tokenizer interface (``tokenize(text) -> list[str]``)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def tokenize(self, text: str) -> list[str]:
        return tokens(text, self.lang)


def _bleu(order: int, lang: str, sentence: bool):
    sacrebleu = require("sacrebleu", "eval")
    return sacrebleu.metrics.BLEU(tokenize="zh" if lang == "zh" else "13a", max_ngram_order=order,
                                  effective_order=sentence)


def sentence_bleu(hyp: str, ref: str, lang: str, order: int = 4) -> float:
    """Sentence BLEU-n (sacrebleu, exponential smoothing), 0..1."""
    return round(_bleu(order, lang, True).sentence_score(hyp or "", [ref or ""]).score / 100, 6)


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str], lang: str, order: int = 4) -> float | None:
    """Corpus BLEU-n (sacrebleu, no smoothing), 0..1; None for an empty corpus."""
    if not hyps:
        return None
    return round(_bleu(order, lang, False).corpus_score([h or "" for h in hyps], [[r or "" for r in refs]]).score
                 / 100, 6)


def rouge_l(hyp: str, ref: str, lang: str) -> float:
    """ROUGE-L F-measure with the character tokenizer (rouge-score)."""
    rouge_scorer = require("rouge_score.rouge_scorer", "eval")
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokenizer(lang))
    return round(scorer.score(ref or "", hyp or "")["rougeL"].fmeasure, 6)


def meteor(hyp: str, ref: str, lang: str, alpha: float = 0.9, beta: float = 3.0, gamma: float = 0.5) -> float:
    """METEOR with exact token matching and nltk's greedy alignment (last hypothesis token first)."""
    h = list(enumerate(tokens(hyp, lang)))
    r = list(enumerate(tokens(ref, lang)))
    n_hyp, n_ref = len(h), len(r)
    matches = []
    for i in range(len(h))[::-1]:
        for j in range(len(r))[::-1]:
            if h[i][1] == r[j][1]:
                matches.append((h[i][0], r[j][0]))
                h.pop(i)
                r.pop(j)
                break
    if not matches:
        return 0.0
    matches.sort()
    chunks = 1 + sum(1 for (a, b), (c, d) in zip(matches, matches[1:]) if not (c == a + 1 and d == b + 1))
    p, rec = len(matches) / n_hyp, len(matches) / n_ref
    fmean = p * rec / (alpha * p + (1 - alpha) * rec)
    return round((1 - gamma * (chunks / len(matches)) ** beta) * fmean, 6)


def _ngrams(toks: list[str], n: int) -> Counter:
    return Counter(tuple(toks[i:i + k]) for k in range(1, n + 1) for i in range(len(toks) - k + 1))


def cider_d(hyps: Sequence[str], refs: Sequence[str | Sequence[str]], lang: str, n: int = 4,
            sigma: float = 6.0) -> tuple[float | None, list[float | None]]:
    """(corpus CIDEr-D, per-sample scores); IDF from all references of this corpus; None below two samples."""
    if len(hyps) < 2:
        return None, [None] * len(hyps)
    ref_lists = [[r] if isinstance(r, str) else list(r) for r in refs]
    crefs = [[_ngrams(tokens(r, lang), n) for r in rs] for rs in ref_lists]
    ctest = [_ngrams(tokens(h, lang), n) for h in hyps]
    df: Counter = Counter()
    for rs in crefs:
        df.update({g for c in rs for g in c})
    log_n = math.log(len(crefs))

    def vec(counts: Counter):
        v = [dict() for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for g, tf in counts.items():
            k = len(g) - 1
            v[k][g] = tf * (log_n - math.log(max(1.0, df[g])))
            norm[k] += v[k][g] ** 2
            if k == 1:  # pycocoevalcap counts the length in bigrams; kept for comparable numbers
                length += tf
        return v, [math.sqrt(x) for x in norm], length

    scores = []
    for test, rs in zip(ctest, crefs):
        vh, nh, lh = vec(test)
        total = [0.0] * n
        for ref in rs:
            vr, nr, lr = vec(ref)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma ** 2))
            for k in range(n):
                val = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                if nh[k] and nr[k]:
                    val /= nh[k] * nr[k]
                total[k] += val * penalty
        scores.append(round(sum(total) / n / len(rs) * 10.0, 6))
    return round(sum(scores) / len(scores), 6), scores


def nlg_scores(hyps: Sequence[str], refs: Sequence[str], lang: str) -> dict[str, list[float | None]]:
    """Per-sample BLEU-1..4, ROUGE-L, METEOR and CIDEr-D (IDF over these references) for one component."""
    out: dict[str, list] = {f"bleu{k}": [sentence_bleu(h, r, lang, k) for h, r in zip(hyps, refs)]
                            for k in BLEU_ORDERS}
    out["rouge_l"] = [rouge_l(h, r, lang) for h, r in zip(hyps, refs)]
    out["meteor"] = [meteor(h, r, lang) for h, r in zip(hyps, refs)]
    out["cider"] = cider_d(hyps, refs, lang)[1]
    return out
