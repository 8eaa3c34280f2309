"""Keyword matching in DICOM descriptions and kernel names, the same way everywhere.

English (ASCII) words match as whole tokens, case-insensitively ("CE" matches "Lung CE 5.0" but not "CHEST";
"C+" matches "Thorax C+ 5.0"); Chinese words match as substrings ("增强" in "胸部增强 肺窗 5mm"). Kernel
patterns are regular expressions matched against a whole kernel value ("B70f" matches ``B[5-9]\\d[a-z]?``).
Example: ``find_word("Thorax C+ 5.0 B70f", ["C+", "增强"])`` -> ``"C+"``.
"""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=1024)
def _word_re(word: str) -> re.Pattern:
    if word.isascii():
        return re.compile(r"(?<![A-Za-z0-9])" + re.escape(word) + r"(?![A-Za-z0-9])", re.IGNORECASE)
    return re.compile(re.escape(word))


@functools.lru_cache(maxsize=1024)
def _full_re(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


def find_word(text: str | None, words: list[str] | tuple[str, ...]) -> str | None:
    """The first of ``words`` found in ``text`` (as a token / substring), or None."""
    if not text:
        return None
    for word in words:
        if word and _word_re(word).search(text):
            return word
    return None


def compile_patterns(words=(), kernels=()) -> None:
    """Compile (and cache) the patterns of ``words`` and ``kernels`` now, e.g. before forking worker processes."""
    for word in words:
        if word:
            _word_re(word)
    for pattern in kernels:
        _full_re(pattern)


def match_kernel(values: tuple[str, ...] | list[str], patterns: list[str] | tuple[str, ...]) -> str | None:
    """The first kernel value that one of ``patterns`` matches as a whole, or None."""
    for value in values:
        v = value.strip()
        if v and any(_full_re(p).fullmatch(v) for p in patterns):
            return v
    return None
