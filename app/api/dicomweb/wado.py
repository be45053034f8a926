"""WADO-RS (PS3.18 10.4): instances, metadata, frames, bulk data, rendered, thumbnails."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from app.api.deps import get_context
from app.api.dicomweb.common import (
    DicomWebRoute,
    json_response,
    prefetched,
    service_root,
    xml_multipart,
)
from app.api.dicomweb.negotiation import (
    UNCOMPRESSED,
    MediaRange,
    NotAcceptable,
    accept_ranges,
    choose_bulk,
    choose_json,
    choose_pixel,
    choose_rendered,
    dicom_syntaxes,
    pick_syntax,
)
from app.context import ServerContext
from app.dicom.dicomweb_render import Rendering, parse_viewport, parse_window
from app.errors import BadRequest, ParameterOutOfRange
from app.protocols.multipart import (
    coalesce,
    multipart_content_type,
    multipart_length,
    multipart_stream,
    new_boundary,
)
from app.services import dicomweb as service
from app.services.dicomweb import RenderOptions, Target
from app.validation import is_digits

router = APIRouter(route_class=DicomWebRoute, tags=["WADO-RS"])

PIXEL_DATA = 0x7FE00010

STUDY = "/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{instance}"


# --- instances ------------------------------------------------------------------------------

def _retrieve(request: Request, context: ServerContext, target: Target) -> Response:
    """PS3.18 10.4.1.1.1: the instances as multipart/related; type="application/dicom"."""
    acceptable = dicom_syntaxes(accept_ranges(request))
    located = service.locate(context, target)
    plan = []
    for item in located:
        syntax = pick_syntax(item.row.transfer_syntax, acceptable)
        if syntax is None:
            raise NotAcceptable(f"Instance {item.sop_uid} is stored as "
                                f"{item.row.transfer_syntax} and cannot be sent in any of "
                                f"the accepted transfer syntaxes ({', '.join(acceptable)})")
        plan.append((item, syntax))
    root = service_root(request)
    boundary = new_boundary()
    # Parts are typed application/dicom without a transfer-syntax parameter, as Orthanc's
    # plugin types them (the syntax is in each file's meta information).
    described = [("application/dicom", item.url(root), item, syntax) for item, syntax in plan]

    def transcoded(item: service.LocatedInstance, syntax: str) -> bytes:
        return b"".join(service.instance_bytes(context, item.row, syntax))

    # The first transcoding is done before answering, so that pixels that cannot be
    # transcoded give an error status rather than a broken stream.
    first = next(((item, transcoded(item, syntax)) for _, _, item, syntax in described
                  if syntax != item.row.transfer_syntax), None)

    def parts() -> Iterator[tuple[str, str | None, Iterable[bytes], int | None]]:
        for content_type, location, item, syntax in described:
            if syntax == item.row.transfer_syntax:  # streamed (uncompressed if stored so)
                yield (content_type, location, service.instance_bytes(context, item.row, syntax),
                       item.row.file_size)
            else:
                data = first[1] if first is not None and first[0] is item \
                    else transcoded(item, syntax)
                yield content_type, location, [data], len(data)

    headers = {}
    if all(syntax == item.row.transfer_syntax for _, _, item, syntax in described):
        # Files sent as stored: the length is known from the index, so the answer is not
        # chunked (clients show progress, and read it without decoding chunks).
        headers["Content-Length"] = str(multipart_length(
            boundary, [(content_type, location, item.row.file_size)
                       for content_type, location, item, _ in described]))
    return StreamingResponse(prefetched(coalesce(multipart_stream(boundary, parts()))),
                             headers=headers,
                             media_type=multipart_content_type(boundary, "application/dicom"))


@router.get(STUDY, name="dicomweb_retrieve_study")
def retrieve_study(request: Request, study: str,
                   context: ServerContext = Depends(get_context)) -> Response:
    return _retrieve(request, context, Target(study))


@router.get(SERIES, name="dicomweb_retrieve_series")
def retrieve_series(request: Request, study: str, series: str,
                    context: ServerContext = Depends(get_context)) -> Response:
    return _retrieve(request, context, Target(study, series))


@router.get(INSTANCE, name="dicomweb_retrieve_instance")
def retrieve_instance(request: Request, study: str, series: str, instance: str,
                      context: ServerContext = Depends(get_context)) -> Response:
    return _retrieve(request, context, Target(study, series, instance))


# --- metadata -------------------------------------------------------------------------------

def _metadata(request: Request, context: ServerContext, target: Target) -> Response:
    """PS3.18 10.4.1.1.2: the stored DICOM JSON of every instance, bulk data by URI."""
    media_type = choose_json(accept_ranges(request), xml_part=True)
    body = service.metadata(context, target, service_root(request))
    if media_type != "application/dicom+xml":
        return json_response(request, body, media_type)
    # PS3.18 8.7.3.2: XML metadata is one Native DICOM Model part per instance.
    return xml_multipart(orjson.loads(body))


@router.get(STUDY + "/metadata", name="dicomweb_study_metadata")
def study_metadata(request: Request, study: str,
                   context: ServerContext = Depends(get_context)) -> Response:
    return _metadata(request, context, Target(study))


@router.get(SERIES + "/metadata", name="dicomweb_series_metadata")
def series_metadata(request: Request, study: str, series: str,
                    context: ServerContext = Depends(get_context)) -> Response:
    return _metadata(request, context, Target(study, series))


@router.get(INSTANCE + "/metadata", name="dicomweb_instance_metadata")
def instance_metadata(request: Request, study: str, series: str, instance: str,
                      context: ServerContext = Depends(get_context)) -> Response:
    return _metadata(request, context, Target(study, series, instance))


# --- frames ---------------------------------------------------------------------------------

def parse_frame_list(text: str) -> list[int]:
    """``1,3,5`` (PS3.18 8.3.3.2: a comma-separated list of positive frame numbers)."""
    numbers = []
    for piece in text.replace("%2C", ",").replace("%2c", ",").split(","):
        piece = piece.strip()
        if not is_digits(piece) or not 1 <= int(piece) <= 2**31 - 1:
            raise BadRequest(f"Invalid frame list {text!r}: expected frame numbers from 1, "
                             "separated by commas")
        numbers.append(int(piece))
    return numbers


def _multipart_requested(ranges: list[MediaRange]) -> bool:
    return any(r.media_type in ("multipart/related", "*/*", "multipart/*") for r in ranges)


def _pixel_answer(ranges: list[MediaRange], chunks: list[bytes], media_type: str,
                  syntax: str, locations: list[str] | None = None) -> Response:
    part_type = f"{media_type}; transfer-syntax={syntax}"
    if len(chunks) == 1 and not _multipart_requested(ranges):
        # A single-part answer when the client asked for the bare media type.
        return Response(chunks[0], media_type=part_type)
    boundary = new_boundary()
    parts = [(part_type, locations[i] if locations else None, [chunk])
             for i, chunk in enumerate(chunks)]
    return StreamingResponse(multipart_stream(boundary, parts),
                             media_type=multipart_content_type(boundary, media_type))


@router.get(INSTANCE + "/frames/{frame_list}", name="dicomweb_frames")
def retrieve_frames(request: Request, study: str, series: str, instance: str, frame_list: str,
                    context: ServerContext = Depends(get_context)) -> Response:
    """PS3.18 10.4.1.1.3: frames uncompressed (octet-stream) or as stored when accepted."""
    return _frames(request, context, Target(study, series, instance),
                   parse_frame_list(frame_list))


@router.get(INSTANCE + "/frames", name="dicomweb_all_frames")
def retrieve_all_frames(request: Request, study: str, series: str, instance: str,
                        context: ServerContext = Depends(get_context)) -> Response:
    """Every frame of the instance (Orthanc's plugin answers ``.../frames`` so)."""
    return _frames(request, context, Target(study, series, instance), None)


def _frames(request: Request, context: ServerContext, target: Target,
            numbers: list[int] | None) -> Response:
    ranges = accept_ranges(request)
    item = service.locate(context, target)[0]
    choice = choose_pixel(ranges, item.row.transfer_syntax)
    chunks = None
    if numbers is not None and choice.transfer_syntax in UNCOMPRESSED:
        chunks = service.frames_by_range(context, item.row, numbers)  # large native files
    if chunks is None:
        ds = service.load_dataset(context, item.row)
        if numbers is None:
            numbers = list(range(1, service.frame_count(ds) + 1))
        chunks = service.frames(ds, numbers, choice.transfer_syntax)
    assert numbers is not None
    root = service_root(request)
    locations = [f"{item.url(root)}/frames/{n}" for n in numbers]
    return _pixel_answer(ranges, chunks, choice.media_type, choice.transfer_syntax, locations)


# --- bulk data ------------------------------------------------------------------------------

@router.get(INSTANCE + "/bulk/{path:path}", name="dicomweb_bulk")
def retrieve_bulk(request: Request, study: str, series: str, instance: str, path: str,
                  context: ServerContext = Depends(get_context)) -> Response:
    """PS3.18 10.4.1.1.5: the BulkDataURIs of the metadata answers.

    Pixel data is negotiated like frames (stored frames when accepted, else uncompressed);
    any other element (in a sequence too: ``60031010/1/60031011``) is its value as
    encoded in the file, as application/octet-stream (Orthanc's plugin answers any tag).
    """
    items, tag = service.parse_bulk_path(path)
    ranges = accept_ranges(request)
    item = service.locate(context, Target(study, series, instance))[0]
    ds = service.load_dataset(context, item.row)
    if tag == PIXEL_DATA and not items:
        choice = choose_pixel(ranges, item.row.transfer_syntax)
        count = service.frame_count(ds)
        chunks = service.frames(ds, list(range(1, count + 1)), choice.transfer_syntax)
        if choice.media_type == "application/octet-stream":
            chunks = [b"".join(chunks)]
        return _pixel_answer(ranges, chunks, choice.media_type, choice.transfer_syntax)
    choose_bulk(ranges)
    value = service.bulk_value(ds, items, tag)
    if not _multipart_requested(ranges):
        return Response(value, media_type="application/octet-stream")
    boundary = new_boundary()
    return Response(
        b"".join(multipart_stream(boundary, [("application/octet-stream", None, [value])])),
        media_type=multipart_content_type(boundary, "application/octet-stream"))


# --- rendered and thumbnails ----------------------------------------------------------------

def render_options(request: Request, *, thumbnail: bool = False) -> RenderOptions:
    """PS3.18 8.3.5.1: window=center,width,function; viewport=vw,vh[,sx,sy,sw,sh];
    quality=1..100; the media type from Accept or ``?accept=``."""
    media_type = choose_rendered(accept_ranges(request))
    params = request.query_params
    quality = 90
    if params.get("quality"):
        text = params["quality"].strip()
        if not is_digits(text) or not 1 <= int(text) <= 100:
            raise ParameterOutOfRange(f"quality must be an integer from 1 to 100, not {text!r}")
        quality = int(text)
    rendering = Rendering()
    if params.get("window"):
        center, width, function = parse_window(params["window"])
        rendering = replace(rendering, center=center, width=width, function=function)
    if params.get("viewport"):
        rendering = replace(rendering, viewport=parse_viewport(params["viewport"]))
    return RenderOptions(media_type, quality, rendering, thumbnail)


def _rendered(request: Request, context: ServerContext, target: Target, frame: int = 1,
              *, thumbnail: bool = False) -> Response:
    options = render_options(request, thumbnail=thumbnail)
    located = service.locate(context, target, with_json=target.instance is None)
    item = located[0] if target.instance else service.representative(located)
    if target.instance is None:
        frame = 1
    body, media_type = service.rendered(context, item.row, frame, options)
    return Response(body, media_type=media_type)


@router.get(STUDY + "/rendered", name="dicomweb_study_rendered")
def study_rendered(request: Request, study: str,
                   context: ServerContext = Depends(get_context)) -> Response:
    return _rendered(request, context, Target(study))


@router.get(SERIES + "/rendered", name="dicomweb_series_rendered")
def series_rendered(request: Request, study: str, series: str,
                    context: ServerContext = Depends(get_context)) -> Response:
    return _rendered(request, context, Target(study, series))


@router.get(INSTANCE + "/rendered", name="dicomweb_instance_rendered")
def instance_rendered(request: Request, study: str, series: str, instance: str,
                      context: ServerContext = Depends(get_context)) -> Response:
    return _rendered(request, context, Target(study, series, instance))


@router.get(INSTANCE + "/frames/{frame_list}/rendered", name="dicomweb_frame_rendered")
def frame_rendered(request: Request, study: str, series: str, instance: str, frame_list: str,
                   context: ServerContext = Depends(get_context)) -> Response:
    numbers = parse_frame_list(frame_list)
    if len(numbers) != 1:
        raise BadRequest("A rendered frame request names exactly one frame")
    return _rendered(request, context, Target(study, series, instance), numbers[0])


@router.get(STUDY + "/thumbnail", name="dicomweb_study_thumbnail")
def study_thumbnail(request: Request, study: str,
                    context: ServerContext = Depends(get_context)) -> Response:
    return _rendered(request, context, Target(study), thumbnail=True)


@router.get(SERIES + "/thumbnail", name="dicomweb_series_thumbnail")
def series_thumbnail(request: Request, study: str, series: str,
                     context: ServerContext = Depends(get_context)) -> Response:
    return _rendered(request, context, Target(study, series), thumbnail=True)


@router.get(INSTANCE + "/thumbnail", name="dicomweb_instance_thumbnail")
def instance_thumbnail(request: Request, study: str, series: str, instance: str,
                       context: ServerContext = Depends(get_context)) -> Response:
    return _rendered(request, context, Target(study, series, instance), thumbnail=True)


@router.get(INSTANCE + "/frames/{frame_list}/thumbnail", name="dicomweb_frame_thumbnail")
def frame_thumbnail(request: Request, study: str, series: str, instance: str, frame_list: str,
                    context: ServerContext = Depends(get_context)) -> Response:
    numbers = parse_frame_list(frame_list)
    return _rendered(request, context, Target(study, series, instance), numbers[0],
                     thumbnail=True)
