"""A micro-batcher: concurrent requests share forward passes, off the event loop.

Requests ``submit`` their texts; one worker task takes the oldest waiting request, adds
the others of the same kind that arrived within ``max_wait`` seconds (up to
``max_batch`` texts), and runs the batch in a single worker thread, so the event loop
keeps answering (health checks, webhooks) while the model works, and the CPU runs one
batch at a time instead of several competing ones. A batch that fails is run again
request by request, so one bad request fails alone. The queue is bounded: past
``max_queue`` waiting texts, ``submit`` raises :class:`Busy` (the server answers 503).

Example:
    >>> import asyncio
    >>> async def demo():
    ...     b = MicroBatcher({"upper": lambda texts: [t.upper() for t in texts]}, max_wait=0.001)
    ...     b.start()
    ...     try:
    ...         return await asyncio.gather(b.submit("upper", ["a", "b"]), b.submit("upper", ["c"]))
    ...     finally:
    ...         await b.stop()
    >>> asyncio.run(demo())
    [['A', 'B'], ['C']]
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

log = logging.getLogger(__name__)


class Busy(Exception):
    """Too many texts are waiting; try again later."""


@dataclass
class _Job:
    kind: str
    items: Sequence[Any]
    future: asyncio.Future
    queued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Group concurrent ``submit`` calls of the same kind into one call of ``functions[kind]``.

    ``functions[kind](items) -> results`` takes a list and returns one result per item, in order.
    """

    def __init__(self, functions: Mapping[str, Callable[[list], list]], *, max_batch: int = 32,
                 max_wait: float = 0.005, max_queue: int = 4096):
        if max_batch < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait >= 0")
        self.functions = dict(functions)
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait, max_queue
        self._jobs: deque[_Job] = deque()
        self._queued_items = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._running: list[_Job] = []
        self.stats = {"batches": 0, "items": 0, "requests": 0, "busy": 0, "errors": 0}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the worker task on the running event loop."""
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conflict-ie-predict")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="conflict-ie-batcher")

    async def stop(self) -> None:
        """Fail what is still waiting, stop the worker, wait for the running batch to end."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for job in [*self._running, *self._jobs]:
            if not job.future.done():
                job.future.set_exception(Busy("the server is shutting down"))
        self._jobs.clear()
        self._running = []
        self._queued_items = 0
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def queued(self) -> int:
        """Texts waiting for a batch."""
        return self._queued_items

    # ------------------------------------------------------------------ requests
    async def submit(self, kind: str, items: Sequence[Any]) -> list:
        """Results for ``items``, computed in a batch with whatever else is waiting."""
        if kind not in self.functions:
            raise KeyError(kind)
        if self._task is None or self._wake is None:
            raise RuntimeError("the batcher is not started")
        if self._queued_items + len(items) > self.max_queue:
            self.stats["busy"] += 1
            raise Busy(f"{self._queued_items} texts are waiting (at most {self.max_queue}); try again shortly")
        future = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(kind, list(items), future))
        self._queued_items += len(items)
        self.stats["requests"] += 1
        self._wake.set()
        return await future

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                self._wake.clear()
                await self._wake.wait()
                continue
            first = self._jobs[0]
            # Give concurrent requests a moment to join, unless the batch is already full.
            deadline = first.queued + self.max_wait
            while self._count(first.kind) < self.max_batch and (delay := deadline - time.monotonic()) > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    break
            batch = self._take(first.kind)
            await self._execute(loop, first.kind, batch)

    def _count(self, kind: str) -> int:
        return sum(len(j.items) for j in self._jobs if j.kind == kind)

    def _take(self, kind: str) -> list[_Job]:
        """The oldest job of ``kind`` and the next ones of that kind while they fit in a batch."""
        batch, rest, n = [], deque(), 0
        while self._jobs:
            job = self._jobs.popleft()
            if job.kind == kind and (not batch or n + len(job.items) <= self.max_batch):
                batch.append(job)
                n += len(job.items)
            else:
                rest.append(job)
        self._jobs = rest
        self._queued_items -= n
        return batch

    async def _execute(self, loop, kind: str, batch: list[_Job]) -> None:
        live = [j for j in batch if not j.future.done()]  # a client that went away is not computed
        if not live:
            return
        self._running = live
        fn = self.functions[kind]
        items = [item for j in live for item in j.items]
        try:
            try:
                results = await loop.run_in_executor(self._executor, fn, items)
                if len(results) != len(items):
                    raise RuntimeError(f"{kind}: {len(items)} items gave {len(results)} results")
            except Exception as exc:
                if len(live) == 1:
                    self._fail(live[0], exc)
                    return
                for job in live:  # find the request that failed; the others still get their answers
                    try:
                        self._deliver(job, await loop.run_in_executor(self._executor, fn, list(job.items)))
                    except Exception as one:
                        self._fail(job, one)
                return
        finally:
            self._running = []
        self.stats["batches"] += 1
        self.stats["items"] += len(items)
        start = 0
        for job in live:
            self._deliver(job, results[start : start + len(job.items)])
            start += len(job.items)

    def _deliver(self, job: _Job, results: list) -> None:
        if not job.future.done():
            job.future.set_result(list(results))

    def _fail(self, job: _Job, exc: BaseException) -> None:
        self.stats["errors"] += 1
        log.error("prediction failed for a request of %d text(s): %r", len(job.items), exc, exc_info=exc)
        if not job.future.done():
            job.future.set_exception(exc)
