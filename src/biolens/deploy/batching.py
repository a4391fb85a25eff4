"""Micro-batching for the HTTP server: concurrent requests gathered into shared forward passes.

A single worker task takes the first waiting request, keeps gathering until ``max_batch`` items are collected or
``max_wait_ms`` has passed since the first, runs one forward pass in a worker thread (the event loop stays free) and
resolves each request's future with its rows. Requests are never split across passes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np

from biolens.errors import BiolensError
from biolens.tasks import Predictor

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_WAIT_MS = 5.0
DEFAULT_BATCH_SIZE = 256


class APIError(Exception):
    """A request the server refuses: HTTP status, the field at fault and a one-line message."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(" ".join(message.split()))
        self.status = status
        self.field = field



@dataclass
class _Job:
    x: np.ndarray
    lengths: np.ndarray | None
    future: asyncio.Future = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.x)


class MicroBatcher:
    """Gathers queued requests into one forward pass: up to ``max_batch`` items or ``max_wait_ms`` after the first.

    ``forward_passes``, ``batched_requests`` and ``batched_items`` count the work done (``/v1/health`` shows them).
    """

    def __init__(self, predictor: Predictor, max_batch: int = DEFAULT_MAX_BATCH,
                 max_wait_ms: float = DEFAULT_MAX_WAIT_MS, batch_size: int = DEFAULT_BATCH_SIZE):
        self.predictor = predictor
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.batch_size = batch_size
        self.forward_passes = 0
        self.batched_requests = 0
        self.batched_items = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._carry: _Job | None = None
        self._inflight: list[_Job] = []  # taken off the queue by the worker, not yet answered

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def queue_depth(self) -> int:
        return (self._queue.qsize() if self._queue is not None else 0) + (self._carry is not None)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._worker(), name="biolens-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        # every request the worker holds (being gathered or in a forward pass), carried or queued gets an answer
        pending = list(self._inflight) + ([self._carry] if self._carry is not None else [])
        self._inflight, self._carry = [], None
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            if not job.future.done():
                job.future.set_exception(APIError(503, "server", "the server is shutting down; retry the request"))

    async def submit(self, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
        """Queue encoded items ``(n, ...)`` and wait for their class probabilities ``(n, C)``."""
        if not self.running or self._queue is None:
            raise APIError(503, "server", "the model worker is not running; retry once the server has started")
        job = _Job(x, lengths, asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def _gather(self) -> list[_Job]:
        assert self._queue is not None
        first = self._carry if self._carry is not None else await self._queue.get()
        self._carry = None
        jobs, n = self._inflight, first.n
        jobs.append(first)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while n < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if n + job.n > self.max_batch:
                self._carry = job  # first in the next batch: a request is never split
                break
            jobs.append(job)
            n += job.n
        return jobs

    def _forward(self, x: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
        # class probabilities (softmax, temperature); regression values or label probabilities for those runs
        return self.predictor.contract.probabilities(self.predictor.logits(x, lengths, self.batch_size))

    async def _run(self, jobs: list[_Job]) -> None:
        # Items of one shape go through one forward pass (sequences always share the contract's width; images may
        # arrive with 1 or 3 decoded channels, converted to the model's channels inside the batch).
        groups: dict[tuple[int, ...], list[_Job]] = {}
        for job in jobs:
            groups.setdefault(tuple(job.x.shape[1:]), []).append(job)
        for group in groups.values():
            group = [j for j in group if not j.future.done()]  # skip requests whose client went away
            if not group:
                continue
            try:
                x = np.concatenate([j.x for j in group])
                lengths = None if group[0].lengths is None else np.concatenate([j.lengths for j in group])
                probs = await asyncio.to_thread(self._forward, x, lengths)
            except Exception as e:  # noqa: BLE001 - handed to every waiting request, the worker keeps running
                log.exception("forward pass failed")
                for j in group:
                    if not j.future.done():
                        j.future.set_exception(_forward_error(e))
                continue
            self.forward_passes += 1
            self.batched_requests += len(group)
            self.batched_items += len(x)
            start = 0
            for j in group:
                if not j.future.done():  # the client may have gone away
                    j.future.set_result(probs[start:start + j.n])
                start += j.n

    async def _worker(self) -> None:
        while True:
            self._inflight = []
            jobs = await self._gather()
            await self._run(jobs)
            self._inflight = []


def _forward_error(e: Exception) -> Exception:
    """What a waiting request gets when its forward pass raised: BiolensErrors as they are (4xx); anything else (out
    of memory, a broken model) a JSON 500 naming the failure instead of a bare "Internal Server Error"."""
    if isinstance(e, (BiolensError, APIError)):
        return e
    first = (str(e).splitlines() or [""])[0][:200]
    return APIError(500, "server", f"the forward pass failed ({type(e).__name__}: {first}); see the server log")
