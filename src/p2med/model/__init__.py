"""The P2Med model, one file per box of the architecture (SPEC section 5).

vision.py (frozen HF vision tower) -> perceiver.py (32 visual tokens per <image>) -> llm.py (HF causal LM,
LoRA through lora.py), composed in mllm.py; conversation.py and processor.py turn conversations and image items
into batches; generate.py decodes; checkpoint.py saves and loads folders; build.py builds it all from
config.py's ModelConfig; tokenizer.py trains the tiny preset's BPE. Nothing here imports torch at package import.
"""
