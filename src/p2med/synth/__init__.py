"""The synthetic hospital: a realistic export with planted, learnable findings and planted PHI (issue 3)."""
