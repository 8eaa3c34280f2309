"""Serving a checkpoint inside the hospital: OpenAI-compatible API, clinician page, drafts, audit, PACS."""
