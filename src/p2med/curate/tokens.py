"""Token counts for the 4,000-token limit (SPEC section 2): a real HF tokenizer when one is configured, else a
documented character proxy: one token per CJK character, per digit, per ASCII word and per other symbol.

Chinese-LLaMA-2's tokenizer spends about 0.7-1 token per Chinese character, and LLaMA and Qwen tokenizers
split numbers into single digits, so the proxy errs on the side of dropping a record that is a little under
the limit rather than keeping one over it (laboratory values are most of an over-long record's length).
Example: ``TokenCounter(None).count("咳嗽38天 cough")`` -> 6.
"""

from __future__ import annotations

import re

from ..common.errors import P2MedError

_PROXY = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z]+|\d|[^\sA-Za-z\d\u3400-\u9fff\uf900-\ufaff]")


class TokenCounter:
    def __init__(self, tokenizer_dir: str | None) -> None:
        self.name = "proxy: CJK character / digit / ASCII word / symbol"
        self._tok = None
        if tokenizer_dir:
            try:
                from transformers import AutoTokenizer
                self._tok = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
            except (OSError, ValueError, ImportError) as exc:
                raise P2MedError(f"tokenizer {tokenizer_dir}: cannot load ({exc}); give a local HF tokenizer "
                                 f"folder or leave `tokenizer` empty for the character proxy") from exc
            self.name = f"tokenizer: {tokenizer_dir}"

    def count(self, text: str) -> int:
        if self._tok is not None:
            return len(self._tok(text, add_special_tokens=False)["input_ids"])
        return len(_PROXY.findall(text))
