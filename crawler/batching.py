"""Pages to the worker pool in batches: whatever pages wait when the pool has room go as one
task.

Each task costs the crawl's main process ~0.35 ms (the executor's thread wake-ups, pipe
writes and queue handling), about a sixth of all it does per page. While the workers keep
up, every page still travels alone, so nothing waits for a batch to fill; once pages queue
up behind busy workers, they share tasks and that cost.

Errors stay per page: a page whose processing raises gets that exception, its batch mates
their results. A broken pool fails every page of the batch (the crawl then ends).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import pickle
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Result = TypeVar("Result")

# Pages per task: enough to amortise it and for the worker's tag_many to batch (it does from
# 6,000 characters of text), few enough to spread the work. On a 2,000-article benchmark
# site, 16 gave 0.65x the extraction baseline, 8 gave 0.59x and 32 no more than 16.
MAX_BATCH = 16


# In a worker: the results of one task's pages, in order, an exception in a page's place.
BatchFunction = Callable[[Sequence[tuple]], list[Result | BaseException]]


def run_batch(function: Callable[..., Result],
              batch: Sequence[tuple]) -> list[Result | BaseException]:
    """In a worker: `function(*args)` for each args of `batch`; an exception is returned in
    its page's place (made picklable), not raised for the whole batch. Bound to a function
    with functools.partial, this is the BatchFunction of a function of one page."""
    results: list[Result | BaseException] = []
    for args in batch:
        try:
            results.append(function(*args))
        except Exception as exc:  # per page: handed to its caller, who raises it
            results.append(picklable(exc))
    return results


def picklable(exc: Exception) -> BaseException:
    """`exc`, or a RuntimeError describing it when it cannot cross a process boundary."""
    try:
        pickle.dumps(exc)
    except Exception:  # any pickling failure: send a description instead
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


class BatchingPool(Generic[Result]):
    """Runs pages in `pool` through `batch_function` (see BatchFunction), at most
    `max_tasks` tasks in flight. Bound to the event loop that first calls `run`."""

    def __init__(self, pool: concurrent.futures.Executor,
                 batch_function: BatchFunction[Result], max_tasks: int) -> None:
        self._pool = pool
        self._batch_function = batch_function
        self._max_tasks = max_tasks
        self._waiting: list[tuple[tuple, asyncio.Future[Result]]] = []
        self._in_flight = 0

    async def run(self, *args: object) -> Result:
        """The result for the page `args`, computed in the pool with its batch mates."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((args, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._waiting and self._in_flight < self._max_tasks:
            batch = [item for item in self._waiting[:MAX_BATCH] if not item[1].done()]
            del self._waiting[:MAX_BATCH]
            if not batch:
                continue    # every page of it was cancelled (the crawl is stopping)
            try:
                task = self._pool.submit(self._batch_function, [args for args, _ in batch])
            except Exception as exc:  # e.g. BrokenExecutor, or shut down
                _fail(batch, exc)
                continue
            self._in_flight += 1
            asyncio.wrap_future(task).add_done_callback(
                lambda done, batch=batch: self._finished(done, batch))

    def _finished(self, done: asyncio.Future[list], batch: list[tuple]) -> None:
        self._in_flight -= 1
        if done.cancelled():
            for _, future in batch:
                future.cancel()
        elif (exc := done.exception()) is not None:
            _fail(batch, exc)
        else:
            for (_, future), result in zip(batch, done.result(), strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        self._dispatch()


def _fail(batch: list[tuple], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
