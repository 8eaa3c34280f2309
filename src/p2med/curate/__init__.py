"""Curation: turns an export into training sets and the benchmark (near-deduplication first)."""
