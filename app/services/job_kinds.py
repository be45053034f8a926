"""Every job kind, in one table: Orthanc's job ``Type`` -> the function that runs it.

The jobs engine (app/jobs) runs what this table names and nothing else; the server hands
it over when the app is built (``app.main.create_app`` calls :func:`install`). A new kind
is a run function in the service it belongs to (see :mod:`app.jobs.kinds` for the
contract) and one line here.
"""

from __future__ import annotations

from app.jobs import kinds
from app.jobs.kinds import RunFunction
from app.services import (
    archive_jobs,
    bulk_modify,
    dicomweb_remote,
    lua_operations,
    merge_split,
    modalities,
    peers,
    query_retrieve,
    storage_commitment,
)

KINDS: dict[str, RunFunction] = {
    archive_jobs.ARCHIVE_JOB: archive_jobs.run_archive,  # "Archive"
    archive_jobs.MEDIA_JOB: archive_jobs.run_media,  # "Media"
    modalities.STORE_JOB: modalities.run_store,  # "DicomModalityStore"
    peers.PEER_STORE_JOB: peers.run_peer_store,  # "OrthancPeerStore"
    query_retrieve.MOVE_JOB: query_retrieve.run_move,  # "DicomMoveScu"
    query_retrieve.GET_JOB: query_retrieve.run_get,  # "DicomGetScu"
    storage_commitment.SCP_JOB: storage_commitment.run_scp,  # "StorageCommitmentScp"
    # Both flavours of Orthanc's ResourceModification: one resource, or bulk.
    bulk_modify.JOB_TYPE: bulk_modify.run_resource_modification,
    merge_split.MERGE_JOB: merge_split.run_merge,  # "MergeStudy"
    merge_split.SPLIT_JOB: merge_split.run_split,  # "SplitStudy"
    dicomweb_remote.STOW_JOB: dicomweb_remote.run_stow,  # "DicomWebStowClient"
    dicomweb_remote.RETRIEVE_JOB: dicomweb_remote.run_retrieve,  # "DicomWebWadoRetrieveClient"
    lua_operations.JOB_TYPE: lua_operations.run_operations,  # "SequenceOfOperations"
}


def install() -> None:
    """Give the jobs engine this table (what it accepts and runs)."""
    kinds.install(KINDS)
