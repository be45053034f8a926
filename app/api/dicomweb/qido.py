"""QIDO-RS (PS3.18 10.6): search for studies, series and instances."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.api.deps import get_context
from app.api.dicomweb.common import DicomWebRoute, json_response, service_root, xml_multipart
from app.api.dicomweb.negotiation import accept_ranges, choose_json
from app.api.params import QueryParameter, query_parameters
from app.context import ServerContext
from app.dicom.levels import Level
from app.services.dicomweb import Target, check_uids
from app.services.dicomweb_qido import parse_query, search

router = APIRouter(route_class=DicomWebRoute, tags=["QIDO-RS"])

_TEXT = {"type": "string"}
# PS3.18 8.3.4: the query parameters of every search (the matching keys come below).
_COMMON = (
    QueryParameter("limit", {"type": "integer", "minimum": 0},
                   "Answer at most this many results (PS3.18 8.3.4.4)"),
    QueryParameter("offset", {"type": "integer", "minimum": 0},
                   "Skip this many results first (PS3.18 8.3.4.4)"),
    QueryParameter("fuzzymatching", {"type": "boolean"},
                   "Fuzzy matching of person names (PS3.18 8.3.4.2)"),
    QueryParameter("includefield", {"type": "array", "items": _TEXT},
                   "Attributes to add to each result, by keyword or gggg,eeee, or `all` "
                   "(repeatable; PS3.18 8.3.4.3)"),
)


def _keys(*names: str) -> tuple[QueryParameter, ...]:
    return tuple(QueryParameter(name, dict(_TEXT),
                                f"Match {name} (single value, wildcards * and ?, date and "
                                "time ranges, UID lists; PS3.18 8.3.4.1; also as gggg,eeee)")
                 for name in names)


# PS3.18 Table 10.6.1-5: the matching attributes of each level (any other attribute of
# the level can be given too, by keyword or tag).
_STUDY = _keys("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "StudyTime",
               "AccessionNumber", "ModalitiesInStudy", "ReferringPhysicianName", "StudyID",
               "StudyDescription")
_SERIES = _keys("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
                "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime")
_INSTANCE = _keys("SOPInstanceUID", "SOPClassUID", "InstanceNumber")
# PS3.18 F.2: the results, DICOM JSON data sets (application/dicom+json).
_RESULTS = {"type": "array", "items": {"type": "object", "additionalProperties": {
    "type": "object", "properties": {"vr": _TEXT, "Value": {"type": "array", "items": {}}}}}}
_ANSWERS = {200: {"description": "The matching data sets (PS3.18 F.2 DICOM JSON); "
                  "multipart/related XML with Accept: application/dicom+xml",
                  "content": {"application/dicom+json": {"schema": _RESULTS}}}}


def _documented(*keys: QueryParameter) -> dict:
    return query_parameters(*_COMMON, *keys)


def _search(request: Request, context: ServerContext, level: Level,
            study: str | None = None, series: str | None = None) -> Response:
    media_type = choose_json(accept_ranges(request), xml_part=True, xml_bare=True)
    scope = {}
    if study is not None:
        check_uids(Target(study, series))
        scope["StudyInstanceUID"] = study
    if series is not None:
        scope["SeriesInstanceUID"] = series
    query = parse_query(level, list(request.query_params.multi_items()), scope)
    answers = search(context, query, service_root(request))
    if media_type == "application/dicom+xml":
        return xml_multipart(answers)
    return json_response(request, answers, media_type)


@router.get("/studies", name="dicomweb_search_studies",
            responses=_ANSWERS, openapi_extra=_documented(*_STUDY))
def search_studies(request: Request, context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.STUDY)


@router.get("/series", name="dicomweb_search_series",
            responses=_ANSWERS, openapi_extra=_documented(*_STUDY, *_SERIES))
def search_series(request: Request, context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.SERIES)


@router.get("/instances", name="dicomweb_search_instances",
            responses=_ANSWERS, openapi_extra=_documented(*_STUDY, *_SERIES, *_INSTANCE))
def search_instances(request: Request,
                     context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.INSTANCE)


@router.get("/studies/{study}/series", name="dicomweb_search_study_series",
            responses=_ANSWERS, openapi_extra=_documented(*_SERIES))
def search_study_series(request: Request, study: str,
                        context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.SERIES, study)


@router.get("/studies/{study}/instances", name="dicomweb_search_study_instances",
            responses=_ANSWERS, openapi_extra=_documented(*_SERIES, *_INSTANCE))
def search_study_instances(request: Request, study: str,
                           context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.INSTANCE, study)


@router.get("/studies/{study}/series/{series}/instances",
            name="dicomweb_search_series_instances", responses=_ANSWERS,
            openapi_extra=_documented(*_INSTANCE))
def search_series_instances(request: Request, study: str, series: str,
                            context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.INSTANCE, study, series)
