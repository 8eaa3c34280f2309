"""The engine: the fast decoder gives the tokens of ``generate_ids`` (merged LoRA, left-padded batch, images),
concurrent requests batched together answer what each gets alone, a full queue refuses, a late request times
out and frees its row, and stopping fails what is still waiting."""

from __future__ import annotations

import threading

import pytest
import torch
from model_helpers import conversation, mini_model, one_thread, randomize_lora  # noqa: F401 (fixture)

from p2med.common.errors import P2MedError
from p2med.model.generate import GenerationConfig, model_batch, generate, generate_ids
from p2med.serve.engine import Engine, Overloaded, ShuttingDown, TimedOut
from p2med.serve.fast_decode import decoder_for


@pytest.fixture(scope="module")
def served():
    model, processor, tok = mini_model()
    randomize_lora(model)
    model.merge_lora()
    return model, processor, tok


def _convs():
    convs = [conversation(answer=None, seed=i) for i in range(3)]
    convs[1]["turns"][0]["human"] += " 患儿咳嗽三天，发热一天，请结合临床"          # unequal lengths: left padding
    return convs


@pytest.mark.parametrize("sample", [False, True])
def test_fast_decoder_matches_generate_ids(served, sample, one_thread):
    model, processor, tok = served
    decode = decoder_for(model)
    assert decode is not None
    cfg = GenerationConfig(max_new_tokens=16, do_sample=sample, temperature=0.8, top_p=0.9, seed=3)
    batch = model_batch(model, processor, _convs())
    ours = torch.stack(list(decode(model, batch, cfg, tok.eos_token_id)))         # [steps, B]
    ref = torch.stack(list(generate_ids(model, batch, cfg, tok.eos_token_id)))
    assert torch.equal(ours, ref)


def test_batched_requests_answer_as_alone(served, one_thread):
    model, processor, _ = served
    engine = Engine(model, processor, max_batch=4, batch_wait_s=0.2, decoder=decoder_for(model))
    engine.start()
    cfg = GenerationConfig(max_new_tokens=12)
    convs = _convs()
    alone = [generate(model, processor, [c], cfg)[0] for c in convs]
    jobs = [engine.submit(c, cfg) for c in convs]
    out = ["".join(engine.pieces(j, 60)) for j in jobs]
    engine.stop(5)
    assert out == alone
    assert all(j.prompt_tokens > 0 and 0 < j.completion_tokens <= 12 for j in jobs)


def test_full_queue_timeout_and_stop(served):
    model, processor, _ = served
    gate = threading.Event()

    def blocked(*args):                              # a decoder that waits: the queue fills behind it
        gate.wait(10)
        yield from decoder_for(model)(*args)
    engine = Engine(model, processor, max_batch=1, max_queue=2, batch_wait_s=0, decoder=blocked)
    engine.start()
    conv, cfg = conversation(answer=None), GenerationConfig(max_new_tokens=4)
    running = engine.submit(conv, cfg)
    while engine.queued():
        pass                                          # the worker took it and waits on the gate
    waiting = [engine.submit(conv, cfg), engine.submit(conv, cfg)]
    with pytest.raises(Overloaded):
        engine.submit(conv, cfg)
    with pytest.raises(TimedOut):
        list(engine.pieces(running, 0.05))
    assert running.cancelled.is_set()
    threading.Timer(0.3, gate.set).start()
    engine.stop(0.0)                                  # no grace: the waiting requests fail
    with pytest.raises(ShuttingDown):
        engine.submit(conv, cfg)
    for job in waiting:
        with pytest.raises(ShuttingDown):
            list(engine.pieces(job, 5))


def test_int8_decoder_stays_close_to_the_float_one(served, one_thread):
    """int8 weights (fbgemm dynamic quantized linear): the prompt's next-token logits barely move, and the
    engine decodes with it like with the float decoder."""
    from p2med.serve.fast_decode import FastDecoder

    model, processor, tok = served
    hf = model.llm.model
    batch = model_batch(model, processor, _convs()[:1])
    with torch.inference_mode():
        h = model.embed(batch["input_ids"], batch["image_mask"], model.visual_tokens(
            batch.get("pixel_values"), None, batch.get("slice_mask")))
        T = h.shape[1]
        logits = []
        for decoder in (FastDecoder(hf, "none"), FastDecoder(hf, "int8")):
            cache = [h.new_zeros(1, decoder.kv_heads, T, decoder.head_dim) for _ in decoder.layers]
            mask = torch.ones(T, T, dtype=torch.bool).tril()[None, None]
            logits.append(decoder._forward(h, torch.arange(T)[None], cache, [c.clone() for c in cache], 0, mask))
    ref, q = logits
    assert torch.nn.functional.cosine_similarity(ref, q).item() > 0.995          # measured 0.9995
    assert (q - ref).abs().max().item() < 0.1 * ref.abs().max().item()            # measured 4.2%
    engine = Engine(model, processor, decoder=decoder_for(model, "int8"))
    engine.start()
    job = engine.submit(_convs()[0], GenerationConfig(max_new_tokens=8))
    ids = list(engine.token_ids(job, 60))
    engine.stop(5)
    assert 0 < len(ids) <= 8 and job.completion_tokens == len(ids)
    with pytest.raises(ValueError, match="quantize"):
        FastDecoder(hf, "int4")


def test_a_loading_engine_builds_its_model_in_its_own_thread(served):
    model, processor, _ = served
    seen = {}

    def load():
        seen["thread"] = threading.current_thread().name
        return model, processor, decoder_for(model)
    engine = Engine.loading(load, max_batch=2)
    engine.start()
    job = engine.submit(_convs()[0], GenerationConfig(max_new_tokens=4))
    assert 0 < len(list(engine.token_ids(job, 60))) <= 4
    engine.stop(5)
    assert seen["thread"] == "p2med-engine"

    def broken():
        raise P2MedError("quantize=int8: not supported")
    with pytest.raises(P2MedError, match="quantize"):
        Engine.loading(broken).start()
