"""The hospital export: the one input every later command reads (docs/export-format.md)."""
