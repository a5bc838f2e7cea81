# -*- test-case-name: tests.integration.test_client_api -*-
"""
Waiting in the client without blocking the reactor: a sleep on the
reactor's clock, in-process locks per key (fcntl locks belong to the
process, so coroutines of one process take turns here), and the
awaitable async context that L{Database.fetchLock} and
L{Database.transaction} return.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

from twisted.internet import defer, task

from ctdb.interfaces import ICTDBReactor

T = TypeVar("T")


def sleep(reactor: ICTDBReactor, seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


class KeyLocks:
    """In-process mutual exclusion per key (fcntl locks are per process)."""

    def __init__(self) -> None:
        self._waiting: dict[bytes, list[defer.Deferred[None]]] = {}

    def acquire(self, key: bytes) -> defer.Deferred[None]:
        queue = self._waiting.get(key)
        if queue is None:
            self._waiting[key] = []
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred(lambda d: queue.remove(d))
        queue.append(d)
        return d

    def release(self, key: bytes) -> None:
        queue = self._waiting.get(key)
        if queue is None:
            return
        if queue:
            queue.pop(0).callback(None)
        else:
            del self._waiting[key]


class AwaitableContext(Generic[T]):
    """
    The result of L{Database.fetchLock} and L{Database.transaction}: await
    it for the object, or use it directly as an async context manager.
    """

    def __init__(
        self,
        make: Callable[[], Awaitable[T]],
        exit: Callable[[T, BaseException | None], Awaitable[None]],
    ) -> None:
        self._make = make
        self._exit = exit
        self._value: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._make().__await__()

    async def __aenter__(self) -> T:
        self._value = await self._make()
        return self._value

    async def __aexit__(
        self,
        excType: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        value, self._value = self._value, None
        if value is not None:
            await self._exit(value, exc)
