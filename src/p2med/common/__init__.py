"""Helpers every command shares: atomic writes, manifest + ledger (SPEC section 9), optional imports."""
