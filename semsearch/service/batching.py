"""Concurrent queries encoded together: each waits a moment for others, then one batch goes to the encoder.

One model call for 32 queries costs little more than for one (the model's weights are read once per
batch), so under load a micro-batch multiplies queries/s; with a single client the wait is ``max_wait``.
One batch runs at a time: while it encodes, the next one fills up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np


class QueryBatcher:
    """``await batcher.encode(text)``: the query vector, encoded in a batch with concurrent callers'.

    ``encode_batch(texts) -> array`` runs in a worker thread; ``on_batch(size)`` is told each batch's size.
    """

    def __init__(self, encode_batch: Callable[[list[str]], np.ndarray], *, max_batch: int = 64,
                 max_wait: float = 0.002, on_batch: Callable[[int], None] | None = None) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be at least 1 and max_wait at least 0")
        self._encode_batch = encode_batch
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._on_batch = on_batch or (lambda size: None)
        self._pending: list[tuple[str, asyncio.Future]] = []
        self._arrived: asyncio.Event | None = None
        self._consumer: asyncio.Task | None = None

    async def encode(self, text: str) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self._consumer is None or self._consumer.done():
            self._arrived = asyncio.Event()
            self._consumer = loop.create_task(self._consume())
        future = loop.create_future()
        self._pending.append((text, future))
        self._arrived.set()
        return await future

    async def _consume(self) -> None:
        while True:
            await self._arrived.wait()
            if len(self._pending) < self.max_batch and self.max_wait:
                await asyncio.sleep(self.max_wait)  # let concurrent callers join
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            if not self._pending:
                self._arrived.clear()
            try:
                await self._run(batch)
            except BaseException as exc:  # noqa: BLE001 - no caller is left waiting, whatever went wrong
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("encoder stopped"))
                if not isinstance(exc, Exception):
                    raise

    async def _run(self, batch: Sequence[tuple[str, asyncio.Future]]) -> None:
        texts = list(dict.fromkeys(text for text, _ in batch))  # the same query twice is encoded once
        self._on_batch(len(texts))
        try:
            vectors = await asyncio.to_thread(self._encode_batch, texts)
        except Exception as exc:  # noqa: BLE001 - every waiting caller gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        by_text = dict(zip(texts, vectors))
        for text, future in batch:
            if not future.done():
                future.set_result(by_text[text])

    async def close(self) -> None:
        for _, future in self._pending:
            if not future.done():
                future.set_exception(RuntimeError("the service is shutting down"))
        self._pending = []
        if self._consumer is not None:
            self._consumer.cancel()
            try:
                await self._consumer
            except asyncio.CancelledError:
                pass
