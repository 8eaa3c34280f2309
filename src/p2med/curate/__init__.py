"""Curation: validated, deduplicated, category-balanced training stages and the benchmark (SPEC sections 2-4, 7)."""
