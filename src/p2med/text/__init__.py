"""Text conventions shared by curation, evaluation and serving: how sections are written and parsed back."""
