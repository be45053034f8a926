"""Queueing webhook events inside the transaction that produced them (see
:mod:`app.services.webhooks` for the whole design and the delivery).

Installed on the index by :meth:`app.context.ServerContext.open` whenever webhooks are
configured — in the server's processes and in ``pharos import`` alike — so every change
that commits queues its events, whoever made it; a running server delivers them.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import orjson

from app.config import Webhook
from app.dicom.levels import Level
from app.index import webhooks_repository as queue
from app.index.db import Connection, Database, IndexEvent
from app.timeutil import now_stamp

# The index's event kinds -> webhook events.
EVENT_OF = {"NewInstance": "InstanceStored", "StableSeries": "StableSeries",
            "StableStudy": "StableStudy", "StablePatient": "StablePatient",
            "Deleted": "Deleted", "JobSubmitted": "JobSubmitted",
            "JobSuccess": "JobSuccess", "JobFailure": "JobFailure"}


def webhook_key(url: str) -> str:
    """The ``webhook`` column: a digest of the URL (which may carry a token)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def event_body(kind: str, level: Any, public_id: str, date: str) -> dict[str, Any]:
    if kind.startswith("Job"):
        resource, path = "Job", f"/jobs/{public_id}"
    else:
        level = Level(level)
        resource, path = level.value, f"/{level.plural}/{public_id}"
    return {"EventId": str(uuid.uuid4()), "Event": EVENT_OF[kind], "ChangeType": kind,
            "ResourceType": resource, "ID": public_id, "Path": path, "Date": date}


class WebhookQueue:
    """The commit hook: one delivery row per event and webhook that wants it."""

    def __init__(self, webhooks: list[Webhook]) -> None:
        self.wanted: dict[str, list[str]] = {}
        for webhook in webhooks:
            for event in webhook.events:
                self.wanted.setdefault(event, []).append(webhook_key(webhook.url))

    def wants(self, events: list[IndexEvent]) -> bool:
        return any(self.wanted.get(EVENT_OF.get(kind, "")) for kind, _, _ in events)

    def __call__(self, conn: Connection, events: list[IndexEvent]) -> None:
        rows: list[dict[str, Any]] = []
        now, date = time.time(), now_stamp()
        for kind, level, public_id in events:
            keys = self.wanted.get(EVENT_OF.get(kind, ""))
            if not keys:
                continue
            body = event_body(kind, level, public_id, date)
            encoded = orjson.dumps(body)
            rows.extend({"webhook": key, "event_id": body["EventId"], "event": body["Event"],
                         "body": encoded, "created": now} for key in keys)
        queue.enqueue(conn, rows)


def install(db: Database, webhooks: list[Webhook]) -> WebhookQueue | None:
    if not webhooks or db.read_only:
        return None
    hook = WebhookQueue(webhooks)
    db.add_commit_hook(hook)
    return hook
