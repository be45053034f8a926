"""The OpenAPI document: committed, valid, generator-friendly, and true to the live server.

``openapi/openapi.json`` is what ``pharos openapi`` prints (``make openapi``); a client
generated from it with openapi-python-client uploads, browses and deletes on a live server.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app.cli import openapi_document
from tests.helpers import REPO, LiveServer, make_dicom

SPEC_PATH = REPO / "openapi" / "openapi.json"
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# FastAPI's placeholder for an answer whose class it does not know as JSON.
PLACEHOLDER = {"type": "string"}
# The JSON shapes the issue names: they must be typed models, not "any JSON".
TYPED_ANSWERS = {
    "store_instance", "list_patients", "get_patient", "get_study", "get_series",
    "get_instance", "delete_patient", "delete_study", "delete_series", "delete_instance",
    "get_patient_statistics", "get_statistics", "get_system", "list_changes",
    "list_exports", "get_study_series", "get_series_instances", "get_instance_patient",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in sorted(spec["paths"].items()):
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_committed_document_matches_the_app() -> None:
    assert SPEC_PATH.is_file(), "openapi/openapi.json is missing: run `make openapi`"
    assert SPEC_PATH.read_text() == openapi_document(), (
        "openapi/openapi.json is out of date with the app: run `make openapi` and commit it")


def test_document_is_deterministic() -> None:
    assert openapi_document() == openapi_document()


def test_document_validates(spec: dict[str, Any]) -> None:
    from openapi_spec_validator import validate
    validate(spec)


def test_operation_ids_are_unique_and_snake_case(spec: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for path, method, operation in _operations(spec):
        where = f"{method.upper()} {path}"
        operation_id = operation.get("operationId")
        assert operation_id, f"{where} has no operationId"
        assert SNAKE_CASE.match(operation_id), f"{where}: {operation_id!r} is not snake_case"
        assert operation_id not in seen, \
            f"operationId {operation_id!r} is used by {seen[operation_id]} and {where}"
        seen[operation_id] = where
        # FastAPI's generated ids (route name + path + method) are not stable names.
        assert not operation_id.endswith(f"_{method}"), f"{where}: generated {operation_id!r}"


def test_json_answers_document_a_schema(spec: dict[str, Any]) -> None:
    problems = []
    for path, method, operation in _operations(spec):
        where = f"{method.upper()} {path} ({operation['operationId']})"
        answers = {status: answer for status, answer in operation["responses"].items()
                   if status.startswith("2")}
        if not answers:
            problems.append(f"{where}: no success answer documented")
        for status, answer in answers.items():
            media = answer.get("content", {}).get("application/json")
            if media is None:
                continue
            if "schema" not in media or media["schema"] == PLACEHOLDER:
                problems.append(f"{where}: {status} JSON answer without a schema")
            elif operation["operationId"] in TYPED_ANSWERS and not _is_typed(media["schema"]):
                problems.append(f"{where}: {status} should be a typed model")
    assert not problems, "\n".join(problems)


def _is_typed(schema: dict[str, Any]) -> bool:
    return bool(schema) and ("$ref" in json.dumps(schema) or "type" in schema)


def test_every_operation_documents_orthanc_errors(spec: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/OrthancError"}
    for name, response in spec["components"]["responses"].items():
        assert response["content"]["application/json"]["schema"] == error, name
    for path, method, operation in _operations(spec):
        responses = operation["responses"]
        assert "422" not in responses, f"{method} {path}: Pharos answers 400, not 422"
        for status in ("400", "401", "403", "default"):
            assert status in responses, f"{method.upper()} {path}: no {status} answer"
        if "{" in path:
            assert "404" in responses, f"{method.upper()} {path}: no 404 answer"


def test_raw_bodies_accept_octet_stream(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/instances"]["post"]["requestBody"]
    assert {"application/dicom", "application/octet-stream"} <= set(body["content"])
    for path, method, operation in _operations(spec):
        content = operation.get("requestBody", {}).get("content", {})
        if content and not any("json" in t or "form" in t for t in content):
            assert "application/octet-stream" in content, f"{method.upper()} {path}"


# --- a generated client against a live server ------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, str]]:
    """The package openapi-python-client generates from the committed document."""
    pytest.importorskip("openapi_python_client",
                        reason="openapi-python-client is not installed (pip install -e '.[test]')")
    executable = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    command = [executable] if executable else [sys.executable, "-m", "openapi_python_client"]
    root = tmp_path_factory.mktemp("client")
    package = "pharos_generated_client"
    result = subprocess.run(
        [*command, "generate", "--path", str(SPEC_PATH), "--output-path",
         str(root / package), "--meta", "none"],
        capture_output=True, text=True, timeout=300, cwd=root)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(package), output
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]


def test_generator_keeps_every_endpoint(generated: tuple[ModuleType, str]) -> None:
    _, output = generated
    dropped = re.findall(r"WARNING parsing (\S+ \S+) within .*Endpoint will not be generated",
                         output)
    assert not dropped, f"openapi-python-client cannot generate: {dropped}\n{output[-3000:]}"


def test_generated_client_uploads_browses_and_deletes(
        generated: tuple[ModuleType, str], server: LiveServer) -> None:
    client_package, _ = generated
    models = importlib.import_module(f"{client_package.__name__}.models")
    types = importlib.import_module(f"{client_package.__name__}.types")

    def module(tag: str, operation: str) -> ModuleType:
        return importlib.import_module(f"{client_package.__name__}.api.{tag}.{operation}")

    client = client_package.Client(base_url=server.url, timeout=60,
                                   raise_on_unexpected_status=True)
    data = make_dicom(patient_id="OPENAPI-1", patient_name="CLIENT^GENERATED")
    body = types.File(payload=io.BytesIO(data), file_name="ct.dcm",
                      mime_type="application/dicom")
    stored = module("instances", "store_instance").sync(client=client, body=body)
    assert isinstance(stored, models.InstanceStored), stored
    assert stored.status == "Success"

    patients = module("patients", "list_patients").sync(client=client)
    assert stored.parent_patient in patients

    study = module("studies", "get_study").sync(client=client, id=stored.parent_study)
    assert isinstance(study, models.StudyResource), study
    assert study.parent_patient == stored.parent_patient
    assert study.series == [stored.parent_series]
    assert study.patient_main_dicom_tags["PatientID"] == "OPENAPI-1"

    instance = module("instances", "get_instance").sync(client=client, id=stored.id)
    assert isinstance(instance, models.InstanceResource), instance
    assert instance.parent_series == stored.parent_series
    assert instance.file_size == len(data)

    deleted = module("patients", "delete_patient").sync(client=client, id=stored.parent_patient)
    assert isinstance(deleted, models.DeleteAnswer), deleted
    assert deleted.remaining_ancestor is None

    gone = module("patients", "get_patient").sync_detailed(client=client,
                                                           id=stored.parent_patient)
    assert gone.status_code == 404
    assert isinstance(gone.parsed, models.OrthancError), gone.parsed
    assert gone.parsed.http_status == 404
    assert stored.parent_patient not in module("patients", "list_patients").sync(client=client)


def test_live_answers_match_their_schemas(spec: dict[str, Any], server: LiveServer) -> None:
    """The typed models describe what the server really answers."""
    from openapi_schema_validator import OAS31Validator

    def check(path: str, answer: Any, method: str = "get", status: str = "200") -> None:
        schema = spec["paths"][path][method]["responses"][status]
        if "$ref" in schema:
            schema = spec["components"]["responses"][schema["$ref"].rsplit("/", 1)[1]]
        root = {"components": spec["components"],
                **schema["content"]["application/json"]["schema"]}
        errors = sorted(OAS31Validator(root).iter_errors(answer), key=str)
        assert not errors, f"{method.upper()} {path}: {errors[0]}"

    with server.client() as http:
        stored = http.post("/instances", content=make_dicom(patient_id="OPENAPI-2"))
        check("/instances", stored.json(), "post")
        ids = stored.json()
        for level, key in (("patients", "ParentPatient"), ("studies", "ParentStudy"),
                           ("series", "ParentSeries"), ("instances", "ID")):
            check(f"/{level}", http.get(f"/{level}").json())
            check(f"/{level}", http.get(f"/{level}?expand").json())
            check(f"/{level}/{{id}}", http.get(f"/{level}/{ids[key]}").json())
            check(f"/{level}/{{id}}/statistics",
                  http.get(f"/{level}/{ids[key]}/statistics").json())
        check("/system", http.get("/system").json())
        check("/statistics", http.get("/statistics").json())
        check("/changes", http.get("/changes").json())
        check("/exports", http.get("/exports").json())
        missing = http.get("/patients/0000")
        assert missing.status_code == 404
        check("/patients/{id}", missing.json(), status="404")
        check("/patients/{id}", http.delete(f"/patients/{ids['ParentPatient']}").json(),
              "delete")
