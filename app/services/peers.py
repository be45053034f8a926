"""Orthanc peers as remotes: ``/peers/{name}/system`` and the store to a peer
(``OrthancPeerStore`` jobs: ``POST /instances`` of each instance, on one keep-alive
connection of :mod:`app.protocols.orthanc_peers`).
"""

from __future__ import annotations

import gzip
import logging
from typing import Any

from app.config import Peer
from app.context import ServerContext
from app.dicom import transcode as transcoding
from app.errors import (
    BadFileFormat,
    InexistentItem,
)
from app.jobs import queue
from app.jobs.kinds import CancelCheck, JobInterrupted, ProgressCallback
from app.protocols import orthanc_peers as peer_client
from app.services import outgoing
from app.services.remotes import get_peer, peer_document, peer_job_json

PEER_STORE_JOB = "OrthancPeerStore"


# --- Orthanc peers ---------------------------------------------------------------------

def peer_system(context: ServerContext, name: str) -> Any:
    return peer_client.system(get_peer(context, name), context.settings.http_timeout)


def run_peer_store(context: ServerContext, payload: dict[str, Any], progress: ProgressCallback,
                   cancel_check: CancelCheck) -> dict[str, Any]:
    """``POST /instances`` of each instance to the peer, on one keep-alive connection."""
    peer = Peer.parse(payload["Peer"], payload["Remote"])
    instances: list[str] = payload["Instances"]
    content = _peer_content(payload, peer)
    missing: list[str] = []
    size = 0
    with peer_client.open_client(peer, context.settings.http_timeout) as client:
        for index, (_, data) in enumerate(outgoing.instance_files(context, instances, missing)):
            if cancel_check():
                raise JobInterrupted()
            if payload.get("Transcode"):
                data = _transcoded_for_peer(data, payload["Transcode"])
            if payload.get("Compress"):  # Orthanc's gzip level 9; Size counts what is sent
                data = gzip.compress(data, compresslevel=9)
            peer_client.post_instance(client, data, gzipped=bool(payload.get("Compress")))
            size += len(data)
            content["Size"] = str(size)
            content["SizeMB"] = size // (1024 * 1024)
            progress((index + 1) / max(1, len(instances)), content)
    content["FailedInstancesCount"] = len(missing)
    if missing:
        progress(1.0, content)
        raise InexistentItem(f"{len(missing)} instance(s) disappeared before being sent")
    return content


def _transcoded_for_peer(data: bytes, syntax: str) -> bytes:
    """Orthanc's ``OrthancPeerStoreJob``: the instance in *syntax*, sent as stored when it
    cannot be transcoded (a lossy target gives a new SOP Instance UID)."""
    try:
        return transcoding.transcode_file(data, syntax)
    except Exception as error:  # noqa: BLE001 — a codec failing on one instance
        logging.getLogger(__name__).warning(
            "Cannot transcode an instance to %s, sent as stored: %s", syntax, error)
        return data


def _peer_content(payload: dict[str, Any], peer: Peer) -> dict[str, Any]:
    content = {"Compress": bool(payload.get("Compress")), "Description": outgoing.DESCRIPTION, "FailedInstancesCount": 0,
               "InstancesCount": len(payload["Instances"]),
               "ParentResources": payload["ParentResources"], "Peer": peer_job_json(peer),
               "Size": "0", "SizeMB": 0}
    if payload.get("Transcode"):
        content["Transcode"] = payload["Transcode"]
    return content


def peer_store(context: ServerContext, name: str, body: Any) -> dict[str, Any]:
    """``POST /peers/{name}/store``: IDs of any level, sync or as a job."""
    peer = get_peer(context, name)
    ids, options = outgoing.parse_store_body(body)
    resources = outgoing.resolve_resources(context, ids)
    instances = outgoing.instances_of(context, resources)
    outgoing.log_exports(context, resources, name)
    payload: dict[str, Any] = {
        "Peer": name, "Remote": peer_document(peer), "Instances": instances,
        "ParentResources": [public_id for _, public_id in resources]}
    if "Transcode" in options:
        payload["Transcode"] = transcoding.check_target(options["Transcode"])
    if options.get("Compress") is not None:  # Orthanc 1.6: gzip the bodies sent
        if not isinstance(options["Compress"], bool):
            raise BadFileFormat("Compress must be a Boolean")
        payload["Compress"] = options["Compress"]
    return queue.submit_or_run(context, PEER_STORE_JOB, payload,
                               synchronous=outgoing.synchronous(options),
                               content=_peer_content(payload, peer), priority=outgoing.priority(options),
                               user_data=queue.user_data_of(options))


def peer_store_straight(context: ServerContext, name: str, data: bytes) -> Any:
    """``POST /peers/{name}/store-straight``: the body, a DICOM file, to the peer as is."""
    peer = get_peer(context, name)
    with peer_client.open_client(peer, context.settings.http_timeout) as client:
        return peer_client.post_instance(client, data)
