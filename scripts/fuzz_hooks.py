"""Schemathesis hooks of the fuzz campaign (``scripts/fuzz.py``; loaded through the
``SCHEMATHESIS_HOOKS`` variable).

Random identifiers only ever reach the 404 branch of a route. These hooks replace the
path parameters, some of the time, by identifiers of resources the campaign stored first
(read from the JSON file named by ``PHAROS_FUZZ_IDS``), so that the generated queries,
bodies and headers also hit the routes' real work on real data.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

_IDS: dict[str, Any] = json.loads(open(os.environ["PHAROS_FUZZ_IDS"]).read())


def _collection(path: str) -> str:
    for piece in path.split("/"):
        if piece and not piece.startswith("{"):
            first = piece
            break
    else:
        return ""
    return {"dicom-web": "dicomweb", "rs": "dicomweb"}.get(first, first)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    if not path_parameters or context.operation is None:
        return st.just(path_parameters)
    collection = _collection(context.operation.path)
    strategies: dict[str, Any] = {}
    # Deleting the real data would leave every later case a 404: DELETE keeps its
    # random identifiers (the data survives the run).
    known = [] if context.operation.method.upper() == "DELETE" else _IDS.get(collection, [])
    if "id" in path_parameters and known:
        strategies["id"] = st.sampled_from([*known, path_parameters["id"]])
    # The modality and the peer "self" (the server itself) by their {name}: their
    # operations (echo, find, move, store...) then really run. Not for PUT nor DELETE:
    # redefining or removing "self" would turn every later case into a refusal.
    # Nor for C-MOVE and C-GET: a generated move names a random target AET, which the
    # remote refuses ("Move destination unknown"), and Orthanc answers a refused retrieve
    # with its network-protocol error, a 500: the campaign would flag Orthanc's own answer.
    # Their real runs are tests/dimse and the Orthanc suites'.
    retrieve = context.operation.path.endswith(("/move", "/get"))
    if "name" in path_parameters and known and collection in ("modalities", "peers") \
            and context.operation.method.upper() not in ("PUT", "DELETE") and not retrieve:
        strategies["name"] = st.sampled_from([*known, path_parameters["name"]])
    if "study" in path_parameters and _IDS.get("triples") and \
            context.operation.method.upper() != "DELETE":
        triple = st.sampled_from([*_IDS["triples"], None])

        def pick(chosen: list[str] | None) -> dict[str, Any]:
            if chosen is None:
                return {}
            names = ("study", "series", "instance")
            return {n: v for n, v in zip(names, chosen, strict=True) if n in path_parameters}
        return triple.map(lambda chosen: {**path_parameters, **pick(chosen)})
    if not strategies:
        return st.just(path_parameters)
    return st.fixed_dictionaries(strategies).map(lambda chosen: {**path_parameters, **chosen})
