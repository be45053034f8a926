"""Webhooks: the archive's events POSTed to HTTP receivers, durably, never blocking ingest.

Configured in the ``"Pharos"`` section::

    "Webhooks": [{"Url": "https://hooks.example/pacs", "Secret": "s3cret",
                  "Events": ["InstanceStored", "StableStudy", "Deleted", "JobFailure"]}]

**One event source.** The events are those the index notes in its write transactions
(``app.index.db.note_events``: the ``/changes`` entries, ``Deleted``, the job events), the
ones Lua's ``OnStoredInstance``/``OnStable*``/``OnDeleted*``/``OnJob*`` callbacks and the
live ``/changes`` stream follow: ``InstanceStored`` (a ``NewInstance`` change),
``StableSeries``, ``StableStudy``, ``StablePatient``, ``Deleted`` (any level),
``JobSubmitted``, ``JobSuccess``, ``JobFailure``.

**Durable, never blocking.** A commit hook (``Database.add_commit_hook``, installed by
:mod:`app.context.webhook_queue` in every process that opens the index, ``pharos import``
too) writes one
``webhook_deliveries`` row per event and interested webhook *inside the transaction that
produced the event*: the event is queued if and only if the change committed, and the
ingest pays one INSERT, never a network round trip. A deliverer thread in every server
process sends them: one process at a time per webhook (a lease in ``webhook_endpoints``,
taken with a conditional UPDATE, so processes and hosts sharing the index cooperate), in
the order their changes committed (numbered under the lock that orders ``/changes``),
each event in its own POST. A 2xx answer deletes the row.
Anything else — refused connection, timeout, any other status — keeps the event and
the webhook waits 1 s, then 2, 4... up to 5 minutes before the next attempt, starting
again from the oldest undelivered event, so a receiver that was down gets everything it
missed, in order, once it is back. Events are never dropped while their webhook is
configured (a receiver must answer 2xx even to events it ignores); removing a webhook
from the configuration drops its queue at the next start (logged).

**At least once.** A process that dies after the receiver got an event but before it
deleted the row, or a lease that expired during a slow delivery, sends that event again:
receivers deduplicate on ``EventId`` (also the ``X-Pharos-Event-Id`` header).

**The request**: ``POST Url`` with ``Content-Type: application/json`` and the body::

    {"EventId": "<uuid4>", "Event": "InstanceStored", "ChangeType": "NewInstance",
     "ResourceType": "Instance", "ID": "<Orthanc ID>", "Path": "/instances/<ID>",
     "Date": "20261201T204800"}

(``ResourceType`` ``Job`` and ``Path`` ``/jobs/<id>`` for job events), headers
``X-Pharos-Event``, ``X-Pharos-Event-Id``, ``X-Pharos-Delivery-Attempt`` and, with a
``Secret``, ``X-Pharos-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed with
the secret>`` (GitHub's scheme: compare with ``hmac.compare_digest``). Redirects are not
followed. ``Timeout`` (seconds, default 10) bounds one delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from app import __version__
from app.config import Webhook
from app.context import ServerContext
from app.context.metrics import labels_key, metrics_of
from app.context.webhook_queue import WebhookQueue, webhook_key
from app.index import webhooks_repository as queue
from app.index.db import IndexEvent

log = logging.getLogger(__name__)

CONTEXT_KEY = "webhooks"
BASE_DELAY = 1.0
MAX_DELAY = 300.0
LEASE = 60.0  # a process that died while delivering leaves the webhook to others after it
BATCH = 100
POLL_PERIOD = 1.0  # events of other processes are seen within a second
DELIVERIES_METRIC = "pharos_webhook_deliveries_total"


def shown_url(url: str) -> str:
    """The URL for logs: no credentials, no query (tokens live there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + \
        (f":{parts.port}" if parts.port else "") + parts.path


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookDeliverer:
    """The commit hook that queues events, and the thread that delivers them."""

    def __init__(self, context: ServerContext, webhooks: list[Webhook]) -> None:
        self.context = context
        self.webhooks = {webhook_key(w.url): w for w in webhooks}
        self._queue = WebhookQueue(webhooks)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pharos-webhooks", daemon=True)
        self._client = httpx.Client(follow_redirects=False,
                                    headers={"User-Agent": f"Pharos/{__version__}"})

    def _committed(self, events: list[IndexEvent]) -> None:
        if self._queue.wants(events):
            self._wake.set()

    # --- delivery --------------------------------------------------------------------

    def start(self) -> WebhookDeliverer:
        with self.context.db.write() as conn:
            queue.ensure_endpoints(conn, self.webhooks)
            dropped = queue.forget_others(conn, list(self.webhooks))
        if dropped:
            log.warning("Dropped %d undelivered webhook event(s) of webhooks no longer "
                        "configured", dropped)
        self.context.db.add_listener(self._committed)
        self._thread.start()
        for webhook in self.webhooks.values():
            log.info("Webhook %s: %s%s", shown_url(webhook.url), ", ".join(webhook.events),
                     " (signed)" if webhook.secret else "")
        return self

    def stop(self) -> None:
        self.context.db.remove_listener(self._committed)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            more = False
            for key, webhook in self.webhooks.items():
                try:
                    more = self.deliver_once(key, webhook) or more
                except Exception:  # noqa: BLE001 — a DB hiccup: try again at the next poll
                    log.exception("Webhook %s: delivery round failed", shown_url(webhook.url))
                if self._stop.is_set():
                    return
            if not more and self._wake.wait(POLL_PERIOD):
                self._wake.clear()

    def deliver_once(self, key: str, webhook: Webhook) -> bool:
        """Send the oldest waiting events of one webhook, if it is due and this process
        gets its lease; True when a full batch went through (more may wait)."""
        db = self.context.db
        now = time.time()
        with db.read() as conn:
            if not queue.due(conn, key, now, self.owner):
                return False
        with db.write() as conn:
            if not queue.take_lease(conn, key, self.owner, now, LEASE):
                return False
            rows = queue.next_deliveries(conn, key, BATCH)
        done: list[int] = []
        error, failed_seq, started = None, 0, time.monotonic()
        for row in rows:
            if self._stop.is_set() or time.monotonic() - started > LEASE / 2:
                break
            error = self._post(webhook, row)
            if error is not None:
                failed_seq = row.seq
                break
            done.append(row.seq)
        with db.write() as conn:
            queue.delivered(conn, done)
            if error is not None:
                failures, delay = queue.failed(conn, key, self.owner, failed_seq, time.time(),
                                               BASE_DELAY, MAX_DELAY, error)
            else:
                previous = queue.succeeded(conn, key, self.owner)
        metrics = metrics_of(self.context)
        url = shown_url(webhook.url)
        if done:
            metrics.add(DELIVERIES_METRIC, labels_key(url=url, outcome="delivered"), len(done))
        if error is not None:
            metrics.add(DELIVERIES_METRIC, labels_key(url=url, outcome="failed"))
            log.warning("Webhook %s: delivery failed (%s); %d failure(s) in a row, next "
                        "attempt in %.0f s", url, error, failures, delay)
            return False
        if previous:
            log.info("Webhook %s: delivering again after %d failed attempt(s)", url, previous)
        return len(done) == BATCH

    def _post(self, webhook: Webhook, row: Any) -> str | None:
        """POST one event; None when the receiver answered 2xx, else why not."""
        body = bytes(row.body)
        headers = {"Content-Type": "application/json", "X-Pharos-Event": row.event,
                   "X-Pharos-Event-Id": row.event_id,
                   "X-Pharos-Delivery-Attempt": str(row.attempts + 1)}
        if webhook.secret:
            headers["X-Pharos-Signature-256"] = signature(webhook.secret, body)
        try:
            answer = self._client.post(webhook.url, content=body, headers=headers,
                                       timeout=webhook.timeout)
        except httpx.HTTPError as failure:
            return f"{type(failure).__name__}: {failure}"[:300]
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"


def start(context: ServerContext) -> WebhookDeliverer | None:
    """Start delivering the configured webhooks (None when there is none)."""
    if not context.settings.webhooks or context.settings.read_only:
        return None
    deliverer = WebhookDeliverer(context, list(context.settings.webhooks)).start()
    context.extras[CONTEXT_KEY] = deliverer
    return deliverer


def pending(context: ServerContext) -> dict[str, int]:
    """Undelivered events per configured webhook (shown URL), for the metrics."""
    with context.db.read() as conn:
        counts = queue.pending_counts(conn)
    return {shown_url(w.url): counts.get(webhook_key(w.url), 0)
            for w in context.settings.webhooks}
