"""The inference engine: one worker thread owns the model and decodes waiting requests together in batches.

Requests enter a bounded queue (full: ``Overloaded``, the API's 503); the worker takes up to ``max_batch``
compatible ones (same kind: with or without images, same sampling settings), left-pads them into one batch and
decodes them step by step, handing each request its token ids as they come; a request reads them through
``pieces`` (streamed text, the same pieces as ``p2med.model.generate.stream``) with a deadline (``TimedOut``,
the API's 504; the request is then dropped from its batch). ``stop`` lets running and queued requests finish
within a grace period and fails the rest with ``ShuttingDown``. It does not know HTTP, users or the store.

``Engine.loading(load)`` runs ``load() -> (model, processor, decoder)`` in the worker thread itself: the
server does so, because torch's OpenMP thread pool is per calling thread and libgomp stops spinning between
operations once more threads are managed than there are cores, so a model touched by the main thread and
decoded by the worker ran ~2x slower on 2 cores (measured: int8 58 M LLM 149 tok/s vs 75).
Example::

    engine = Engine(model, processor, decoder=decoder_for(model)); engine.start()
    job = engine.submit({"turns": [{"human": "【主诉】咳嗽3天 ..."}], "lang": "zh"}, GenerationConfig(max_new_tokens=64))
    text = "".join(engine.pieces(job, timeout_s=60))
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

from ..model.generate import GenerationConfig, generate_ids, text_pieces

log = logging.getLogger(__name__)
_END = object()


class Overloaded(Exception):
    """The queue is full."""


class TimedOut(Exception):
    """The request did not finish within its time."""


class ShuttingDown(Exception):
    """The server is stopping."""


@dataclass
class Job:
    conversation: dict
    cfg: GenerationConfig
    tokens: "queue.Queue[Any]" = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    queued_at: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None

    def kind(self) -> tuple:
        c = self.cfg
        return (bool(self.conversation.get("images")), c.do_sample, c.temperature, c.top_k, c.top_p, c.seed)


Decoder = Callable[[Any, dict, GenerationConfig, int], Iterator[torch.Tensor]]


class Engine:
    def __init__(self, model: Any, processor: Any, max_batch: int = 8, max_queue: int = 32,
                 batch_wait_s: float = 0.005, decoder: Decoder | None = None, threads: int = 0) -> None:
        self.max_batch, self.batch_wait_s = max_batch, batch_wait_s
        self.threads = threads          # torch intra-op threads of the worker (0: the process's setting)
        self._load: Callable[[], tuple[Any, Any, Decoder | None]] | None = None
        self.load_error: BaseException | None = None
        self.ready = threading.Event()
        if model is not None:
            self._attach(model, processor, decoder)
        self.queue: "queue.Queue[Job]" = queue.Queue(maxsize=max_queue)
        self.held: list[Job] = []
        self.stopping = threading.Event()
        self.abort = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self.thread = threading.Thread(target=self._loop, name="p2med-engine", daemon=True)

    @classmethod
    def loading(cls, load: Callable[[], tuple[Any, Any, Decoder | None]], **kwargs: Any) -> "Engine":
        """An engine whose worker thread builds its model at ``start`` (all torch work stays in that thread)."""
        engine = cls(None, None, **kwargs)
        engine._load = load
        return engine

    def _attach(self, model: Any, processor: Any, decoder: Decoder | None) -> None:
        self.model, self.processor = model, processor
        self.tokenizer = processor.tokenizer
        self.decode: Decoder = decoder or generate_ids
        self.device = next(model.parameters()).device

    # ---------------------------------------------------------------------------------------------- clients
    def start(self) -> None:
        """Start the worker; with a loader, wait until the model is loaded (its error is raised here)."""
        self.thread.start()
        self.ready.wait()
        if self.load_error is not None:
            raise self.load_error

    def submit(self, conversation: dict, cfg: GenerationConfig) -> Job:
        if self.stopping.is_set():
            raise ShuttingDown("the server is shutting down")
        job = Job(conversation, cfg)
        try:
            self.queue.put_nowait(job)
        except queue.Full as exc:
            raise Overloaded(f"{self.queue.maxsize} requests are already waiting") from exc
        return job

    def token_ids(self, job: Job, timeout_s: float) -> Iterator[int]:
        """The job's token ids as they are decoded (without EOS); raises TimedOut past the deadline."""
        deadline = job.queued_at + timeout_s
        while True:
            try:
                item = job.tokens.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                job.cancelled.set()
                raise TimedOut(f"no answer within {timeout_s:g} s") from None
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def pieces(self, job: Job, timeout_s: float) -> Iterator[str]:
        try:
            yield from text_pieces(self.tokenizer, self.token_ids(job, timeout_s))
        finally:
            job.cancelled.set()       # a client that went away frees its row

    def queued(self) -> int:
        return self.queue.qsize() + len(self.held)

    def stop(self, grace_s: float) -> None:
        """Refuse new requests, let queued and running ones finish within ``grace_s``, fail the rest."""
        self.stopping.set()
        end = time.monotonic() + grace_s
        while time.monotonic() < end and (self.queued() or not self.idle.is_set()):
            time.sleep(0.02)
        self.abort.set()
        self._fail_waiting(ShuttingDown("the server shut down before this request ran"))
        self.queue.put(None)  # type: ignore[arg-type]  # wakes the worker
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    # ----------------------------------------------------------------------------------------------- worker
    def _fail_waiting(self, exc: BaseException) -> None:
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.tokens.put(exc)
        for job in self.held:
            job.tokens.put(exc)
        self.held.clear()

    def _next_batch(self) -> list[Job] | None:
        first = self.held.pop(0) if self.held else self.queue.get()
        if first is None:
            return None
        batch, end = [first], time.monotonic() + self.batch_wait_s
        keep = []
        for job in self.held:                    # earlier leftovers first, in order
            (batch if job.kind() == first.kind() and len(batch) < self.max_batch else keep).append(job)
        self.held = keep
        while len(batch) < self.max_batch:
            try:
                job = self.queue.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self.queue.put(None)  # type: ignore[arg-type]
                break
            (batch if job.kind() == first.kind() else self.held).append(job)
        return batch

    def _loop(self) -> None:
        torch.set_num_threads(self.threads or torch.get_num_threads())   # set in the thread that computes
        if self._load is not None:
            try:
                self._attach(*self._load())
            except BaseException as exc:  # noqa: BLE001 - start() raises it in the caller's thread
                self.load_error = exc
                self.ready.set()
                return
        self.ready.set()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self.idle.clear()
            try:
                self._run([j for j in batch if not j.cancelled.is_set()])
            except Exception as exc:  # noqa: BLE001 - the worker must survive any one batch
                log.error("batch failed: %s", type(exc).__name__)
                for job in batch:
                    job.tokens.put(RuntimeError(f"generation failed ({type(exc).__name__})"))
            finally:
                self.idle.set()

    def _encode(self, jobs: list[Job]) -> tuple[list[Job], list[dict]]:
        ok, samples = [], []
        for job in jobs:
            c = job.conversation
            try:
                sample = self.processor.encode(c["turns"], c.get("images", ()), c.get("lang", "zh"))
            except Exception as exc:  # noqa: BLE001 - a bad request fails alone
                job.tokens.put(exc)
                continue
            job.prompt_tokens = int(sample["input_ids"].shape[0])
            ok.append(job)
            samples.append(sample)
        return ok, samples

    def _run(self, jobs: list[Job]) -> None:
        jobs, samples = self._encode(jobs)
        if not jobs:
            return
        batch = {k: v.to(self.device) for k, v in self.processor.collate(samples, padding_side="left").items()}
        cfg = dataclasses.replace(jobs[0].cfg, max_new_tokens=max(j.cfg.max_new_tokens for j in jobs))
        eos = self.tokenizer.eos_token_id
        open_ = [True] * len(jobs)
        try:
            for step in self.decode(self.model, batch, cfg, eos):
                now = time.monotonic()
                for i, (job, t) in enumerate(zip(jobs, step.tolist())):
                    if not open_[i]:
                        continue
                    if job.cancelled.is_set() or t == eos:
                        open_[i] = False
                        job.tokens.put(_END)
                        continue
                    job.first_token_at = job.first_token_at or now
                    job.completion_tokens += 1
                    job.tokens.put(t)
                    if job.completion_tokens >= job.cfg.max_new_tokens:
                        open_[i] = False
                        job.tokens.put(_END)
                if not any(open_):
                    return
                if self.abort.is_set():
                    raise ShuttingDown("the server shut down while this request ran")
        except Exception as exc:  # noqa: BLE001 - the batch's requests fail, the worker goes on
            if not isinstance(exc, ShuttingDown):
                log.error("decoding failed: %s", type(exc).__name__)
                exc = RuntimeError(f"generation failed ({type(exc).__name__})")
            for i, job in enumerate(jobs):
                if open_[i]:
                    open_[i] = False
                    job.tokens.put(exc)
        finally:
            for i, job in enumerate(jobs):
                if open_[i]:
                    job.tokens.put(_END)
