"""Clinical text understanding shared by curation and evaluation (Chinese first, English too).

``categories``: impressions and diagnoses -> normalised disease categories (multi-label, negation, uncertainty,
laterality/lobe attributes, what could not be mapped). ``findings``: radiology findings (pattern, side,
zone/lobe, change vs a prior). ``scoring``: per-finding and per-diagnosis precision/recall/F1 against a
reference text. ``cues`` and ``anatomy`` are the pieces both extractors use.
"""
