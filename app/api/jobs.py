"""``/jobs``: Orthanc's jobs JSON and controls (cancel, pause, resume, resubmit)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.blob_responses import blob_answer
from app.api.deps import flag, get_context
from app.api.params import EXPAND, query_parameters
from app.api.responses import JsonResponse, content_disposition, json_answer
from app.api.schemas import EmptyAnswer, Job
from app.blobstore.stored import StoredFile
from app.errors import InexistentItem
from app.jobs import queue
from app.jobs.json import job_json
from app.services.archive_jobs import delete_job_output, job_output

router = APIRouter(tags=["Jobs"])


@router.get("/jobs", operation_id="list_jobs", response_model=list[Job] | list[str],
            openapi_extra=query_parameters(EXPAND("Answer the jobs instead of their IDs")))
def list_jobs(request: Request) -> JsonResponse:
    """The job IDs, or the jobs with ``?expand``, in submission order."""
    rows = queue.list_jobs(get_context(request))
    if flag(request, "expand"):
        return json_answer([job_json(row) for row in rows])
    return json_answer([row.id for row in rows])


@router.get("/jobs/{id}", operation_id="get_job", response_model=Job)
def get_job(id: str, request: Request) -> JsonResponse:
    """``{ID, Type, State, Progress, Priority, CreationTime, CompletionTime, EffectiveRuntime,
    ErrorCode, ErrorDescription, ErrorDetails, Timestamp, Content}``."""
    return json_answer(queue.job_document(get_context(request), id))


@router.delete("/jobs/{id}", operation_id="delete_job", response_class=Response,
               responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                                "description": "The job is forgotten (an empty answer)"},
                          404: {"description": "Unknown job, or a job that has not completed "
                                               "(cancel it first)"}})
def delete_job(id: str, request: Request) -> Response:
    """Delete a completed job from the history, with its outputs (Orthanc 1.12.2)."""
    queue.delete(get_context(request), id)
    return Response(b"", headers={"Content-Type": "text/plain"})


def _control(action: str) -> None:
    operation = getattr(queue, action)

    def control(id: str, request: Request) -> Response:
        if operation(get_context(request), id):
            return json_answer({})
        return Response(status_code=400)  # Orthanc answers an empty 400

    control.__doc__ = f"{action.capitalize()} the job (Orthanc's rules for each state)."
    router.add_api_route(f"/jobs/{{id}}/{action}", control, methods=["POST"],
                         operation_id=f"{action}_job", response_model=EmptyAnswer,
                         name=f"{action}_job",
                         responses={400: {"description": "Not possible in the job's state "
                                                         "(an empty answer, as in Orthanc)"}})


for _action in ("cancel", "pause", "resume", "resubmit"):
    _control(_action)


@router.get("/jobs/{id}/archive", operation_id="get_job_archive", response_class=Response,
            responses={200: {"content": {"application/zip": {"schema": {
                "type": "string", "format": "binary"}}},
                "description": "The ZIP of a successful Archive or Media job"}})
def get_job_archive(id: str, request: Request) -> Response:
    """The output of an asynchronous archive or media job (404 until it succeeded);
    ``Range`` reads one byte range of it (a resumed download)."""
    context = get_context(request)
    key, filename = job_output(context, id)
    headers = {"Content-Disposition": content_disposition(filename)}

    def missing() -> Exception:
        return InexistentItem("Job has no such output: archive")
    try:
        size = context.blobs.size(key)
    except FileNotFoundError as error:
        raise missing() from error
    return blob_answer(request, StoredFile(context.blobs, key, size), "application/zip",
                       headers, missing)


@router.delete("/jobs/{id}/archive", operation_id="delete_job_archive",
               response_class=Response,
               responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                                "description": "The output is deleted (an empty answer)"}})
def delete_job_archive(id: str, request: Request) -> Response:
    """Delete the ZIP of a finished archive or media job (Orthanc 1.12.1); the job stays."""
    delete_job_output(get_context(request), id)
    return Response(b"", headers={"Content-Type": "text/plain"})
