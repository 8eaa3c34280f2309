"""Evaluation on the six-task benchmark (SPEC section 7): generation, section parsing, the LLM judge,
NLG and clinical metrics, statistics, judge reliability, breakdowns, baselines, ablations and the report.

``runner.evaluate`` is the library entry; ``p2med eval`` / ``p2med compare`` / ``p2med ablate`` the commands.
"""
