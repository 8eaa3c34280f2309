"""P2Med: pediatric medical multimodal LLM toolkit (re-implementation of P2Med-MLLM, see SPEC)."""

__version__ = "0.1.0"
