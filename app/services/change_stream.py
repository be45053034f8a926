"""The live change stream (``GET /changes/stream``, a Pharos extension): the ``/changes``
log as Server-Sent Events, for scripts that would otherwise poll ``/changes?since=``.

It reads the same log as ``/changes`` — the changes table, written in the transaction of
each change — so a client that reconnects with ``Last-Event-ID`` (browsers'
``EventSource`` do it by themselves) or ``?since=`` resumes exactly where it stopped,
without missing or repeating a change, across restarts and whichever HTTP process
answers. Each change is one event: ``id:`` its ``Seq``, ``data:`` the JSON of its
``/changes`` entry (no ``event:`` field, so ``EventSource.onmessage`` gets them all).
A comment line every :data:`HEARTBEAT` seconds keeps proxies from closing an idle stream
and lets the server notice a client that left.

A commit of this process wakes the streams at once (an index listener); changes made by
other processes are seen within :data:`POLL_PERIOD`. ``Deleted`` is not in Orthanc's
change log, hence not in the stream: webhooks carry it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio.to_thread
import orjson

from app.context import ServerContext
from app.index import repository
from app.index.db import IndexEvent
from app.services import browse

CONTEXT_KEY = "changes.notifier"
# Set when the process is asked to stop: the streams end, so that uvicorn's graceful
# shutdown (which waits for every response to complete) is not held by them.
STOPPING = threading.Event()
POLL_PERIOD = 1.0
HEARTBEAT = 15.0
PAGE = 500


class ChangeNotifier:
    """Wakes the open streams of this process after each commit that logged changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def __call__(self, events: list[IndexEvent]) -> None:
        if not any(kind in browse.CHANGE_TYPES and kind != "Deleted" for kind, _, _ in events):
            return
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop closed (server stopping)
                pass

    def subscribe(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        return waiter

    def unsubscribe(self, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiters.discard(waiter)


def end_streams_on_exit() -> Callable[[], None]:
    """Chain a handler before the server's SIGINT/SIGTERM handlers (uvicorn's, installed
    before the app starts) that ends the open streams; answers the undo. A no-op outside
    the main thread (an app served by a test client)."""
    STOPPING.clear()
    previous: dict[int, Any] = {}

    def handler(number: int, frame: Any) -> None:
        STOPPING.set()
        original = previous.get(number)
        if callable(original):
            original(number, frame)
        elif original != signal.SIG_IGN:  # the default action: die of the same signal
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)

    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, handler)
    except ValueError:  # not the main thread
        return lambda: None

    def undo() -> None:
        for number, original in previous.items():
            try:
                signal.signal(number, original)
            except (ValueError, TypeError):
                pass
    return undo


def notifier_of(context: ServerContext) -> ChangeNotifier:
    found = context.extras.get(CONTEXT_KEY)
    if found is None:
        found = ChangeNotifier()
        if context.extras.setdefault(CONTEXT_KEY, found) is found:
            context.db.add_listener(found)
        found = context.extras[CONTEXT_KEY]
    return found  # type: ignore[return-value]


def last_seq(context: ServerContext) -> int:
    with context.db.read_log() as conn:
        return repository.last_change_index(conn)


def _page(context: ServerContext, since: int, types: Sequence[str]) -> list[dict[str, Any]]:
    with context.db.read_log() as conn:
        changes: list[dict[str, Any]] = browse.changes_json(conn, since, PAGE,
                                                            types=types)["Changes"]
        return changes


async def events(context: ServerContext, since: int, types: Sequence[str]) -> AsyncIterator[bytes]:
    """The stream's bytes: every change after *since*, then each new one as it comes."""
    notifier = notifier_of(context)
    waiter = notifier.subscribe()
    _, wake = waiter
    try:
        yield f"retry: {int(POLL_PERIOD * 1000)}\n\n".encode()
        cursor = since
        quiet = 0.0
        while not STOPPING.is_set():
            wake.clear()
            changes = await anyio.to_thread.run_sync(_page, context, cursor, types)
            if changes:
                quiet = 0.0
                yield b"".join(b"id: %d\ndata: %s\n\n" % (change["Seq"], orjson.dumps(change))
                               for change in changes)
                cursor = changes[-1]["Seq"]
                if len(changes) == PAGE:
                    continue
            try:
                await asyncio.wait_for(wake.wait(), POLL_PERIOD)
            except TimeoutError:
                quiet += POLL_PERIOD
                if quiet >= HEARTBEAT:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
    finally:
        notifier.unsubscribe(waiter)
