"""QIDO-RS (PS3.18 10.6): search for studies, series and instances."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.api.deps import get_context
from app.api.dicomweb.common import DicomWebRoute, json_response, service_root, xml_multipart
from app.api.dicomweb.negotiation import accept_ranges, choose_json
from app.context import ServerContext
from app.dicom.levels import Level
from app.services.dicomweb import Target, check_uids
from app.services.dicomweb_qido import parse_query, search

router = APIRouter(route_class=DicomWebRoute, tags=["DICOMweb QIDO-RS"])


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


@router.get("/studies", name="dicomweb_search_studies")
def search_studies(request: Request, context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.STUDY)


@router.get("/series", name="dicomweb_search_series")
def search_series(request: Request, context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.SERIES)


@router.get("/instances", name="dicomweb_search_instances")
def search_instances(request: Request,
                     context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.INSTANCE)


@router.get("/studies/{study}/series", name="dicomweb_search_study_series")
def search_study_series(request: Request, study: str,
                        context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.SERIES, study)


@router.get("/studies/{study}/instances", name="dicomweb_search_study_instances")
def search_study_instances(request: Request, study: str,
                           context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.INSTANCE, study)


@router.get("/studies/{study}/series/{series}/instances",
            name="dicomweb_search_series_instances")
def search_series_instances(request: Request, study: str, series: str,
                            context: ServerContext = Depends(get_context)) -> Response:
    return _search(request, context, Level.INSTANCE, study, series)
