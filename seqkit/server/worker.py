"""The server's one worker thread, which owns the model, and the queue of requests waiting for it:
translation requests with equal settings are decoded together, up to `max_batch` lines (dynamic
batching); a full queue is 503, a request unanswered after `timeout` seconds 504."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from seqkit.wording import counted


@dataclass(frozen=True)
class Limits:
    max_batch: int = 64  # lines decoded together at most
    max_lines: int = 256  # lines per request
    max_chars: int = 2000  # characters per line
    max_queue: int = 64  # requests waiting at most
    timeout: float = 60.0  # seconds a request may wait for its answer

    @property
    def max_body(self) -> int:
        """The largest request body, in bytes, that can hold max_lines lines of max_chars characters: 12
        bytes a character (a JSON-escaped surrogate pair, "\\ud83d\\ude00"), quotes and a comma a line,
        and 64 KiB for the settings."""
        return self.max_lines * (self.max_chars * 12 + 3) + 65536


class Refused(Exception):
    """An HTTP error with a JSON body {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class _Job:
    """One request's work: `run(lines)` for a batchable translation (`key`: its settings), or `call()`."""

    lines: list[str]
    key: Any  # requests with equal keys are decoded together; None: never batched
    call: Callable[[list[str]], list[Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    cancelled: threading.Event = field(default_factory=threading.Event)


class Worker:
    """The thread that owns the model, and its queue."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.waiting: deque[_Job | None] = deque()  # oldest first; None, queued last, stops the thread
        self.changed = threading.Condition()  # guards `waiting`
        self.thread = threading.Thread(target=self._run, name="seqkit-model", daemon=True)
        self.requests = self.batches = 0  # answered so far (GET /health): batching at work when fewer batches

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Answer what is queued, then end the thread."""
        with self.changed:
            self.waiting.append(None)
            self.changed.notify()
        self.thread.join()

    @property
    def queued(self) -> int:
        """Requests waiting for the worker (those that timed out waiting are not)."""
        with self.changed:
            self._forget_timed_out()
            return sum(job is not None for job in self.waiting)

    def _forget_timed_out(self) -> None:
        """(Under `changed`.) Drop the jobs whose requests timed out waiting: they hold no place."""
        if any(job is not None and job.cancelled.is_set() for job in self.waiting):
            self.waiting = deque(job for job in self.waiting if job is None or not job.cancelled.is_set())

    async def submit(self, lines: list[str], key: Any, call: Callable[[list[str]], list[Any]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        job = _Job(lines, key, call, loop, loop.create_future())
        with self.changed:
            self._forget_timed_out()
            if len(self.waiting) >= self.limits.max_queue:
                raise Refused(
                    503,
                    f"the queue is full ({counted(self.limits.max_queue, 'request')}); retry shortly",
                    {"Retry-After": "1"},
                )
            self.waiting.append(job)
            self.changed.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.limits.timeout)
        except TimeoutError:
            job.cancelled.set()  # if the worker has not started it, it never will
            job.future.cancel()  # done: a late answer or error is dropped, not left unretrieved (logged)
            raise Refused(
                504,
                f"no answer within the server's --timeout of {self.limits.timeout:g} s; retry, or send fewer "
                "lines or a smaller beam_size",
            ) from None

    def _take(self) -> list[_Job] | None:
        """The next batch: the oldest job, and every queued one with its settings (not only those next to
        it), up to max_batch lines; the others keep their order. None once the stop (queued last, after
        uvicorn has answered every request) is reached."""
        with self.changed:
            self._forget_timed_out()
            while not self.waiting:
                self.changed.wait()
                self._forget_timed_out()
            first = self.waiting.popleft()
            if first is None:
                return None
            batch, lines, others = [first], len(first.lines), deque[_Job | None]()
            for job in self.waiting:
                if (
                    job is not None
                    and first.key is not None
                    and job.key == first.key
                    and lines + len(job.lines) <= self.limits.max_batch
                ):
                    batch.append(job)
                    lines += len(job.lines)
                else:
                    others.append(job)
            self.waiting = others
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            batch = [job for job in batch if not job.cancelled.is_set()]
            if batch:
                self.requests, self.batches = self.requests + len(batch), self.batches + 1
                self._answer(batch)

    def _answer(self, batch: list[_Job]) -> None:
        try:
            results = batch[0].call([line for job in batch for line in job.lines])
        except Exception as e:
            if len(batch) > 1:  # one request's fault (a line over the limit) must not fail the others
                for job in batch:
                    self._answer([job])
                return
            batch[0].loop.call_soon_threadsafe(_settle, batch[0].future, None, e)  # a user error, or a bug
            return
        if len(batch) == 1:  # (generate: num_samples results per prompt)
            batch[0].loop.call_soon_threadsafe(_settle, batch[0].future, results, None)
            return
        start = 0
        for job in batch:
            part = results[start : start + len(job.lines)]
            start += len(job.lines)
            job.loop.call_soon_threadsafe(_settle, job.future, part, None)


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
