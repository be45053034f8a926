"""The OpenAPI document: committed, valid, generator-friendly, and true to the live server.

``openapi/openapi.json`` is what ``pharos openapi`` prints (``make openapi``); a client
generated from it with openapi-python-client uploads, browses and deletes on a live server.
"""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from app.cli import openapi_document
from tests.helpers import REPO, LiveServer, make_dicom

SPEC_PATH = REPO / "openapi" / "openapi.json"
GENERATOR_CONFIG = REPO / "openapi" / "openapi-python-client.yaml"
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
    # {} answers, jobs, job contents, {ID, Path} answers, name lists
    "clear_changes", "bulk_delete", "add_study_label", "cancel_job", "echo_modality",
    "list_jobs", "get_job", "modify_study", "anonymize_series", "merge_study", "split_study",
    "bulk_modify", "store_to_modality", "move_from_modality", "create_dicom",
    "query_modality", "list_modalities", "list_peers", "list_queries",
    "get_instance_attachment_info", "set_patient_attachment", "list_instance_attachments",
    "reconstruct_all", "tools_lookup",
}
# Routes whose answers are documented elsewhere (DICOMweb: PS3.18's JSON).
ANY_JSON_ALLOWED = ("/dicom-web/", "/wado")
# Query arguments read under a second name, documented under their first one.
QUERY_ALIASES = {"RequestedTags": "requestedTags", "WindowCenter": "window-center",
                 "WindowWidth": "window-width"}


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
            elif not media["schema"] and not path.startswith(ANY_JSON_ALLOWED):
                problems.append(f"{where}: {status} documented as any JSON")
            elif operation["operationId"] in TYPED_ANSWERS and not _is_typed(media["schema"]):
                problems.append(f"{where}: {status} should be a typed model")
    assert not problems, "\n".join(problems)


def test_no_two_routes_share_a_path_and_method() -> None:
    """The spec keeps one operation per path and method: a second route would be hidden."""
    import fastapi.routing
    from fastapi.routing import APIRoute

    from app.config import Settings
    from app.main import create_app
    app = create_app(Settings())
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    seen: dict[tuple[str, str], str] = {}
    duplicates = []
    for route in (iterate(app.routes) if iterate else app.routes):
        if not isinstance(getattr(route, "original_route", route), APIRoute) or \
                not route.include_in_schema:
            continue
        for method in route.methods or ():
            key = (route.path_format, method)
            if key in seen:
                duplicates.append(f"{method} {route.path_format}: {seen[key]} and {route.name}")
            seen[key] = route.name
    assert not duplicates, "\n".join(duplicates)


def test_attachment_operation_ids_follow_one_pattern(spec: dict[str, Any]) -> None:
    """``{verb}_{level}_attachment[s][_{operation}]`` for every level."""
    pattern = re.compile(r"^[a-z]+_(patient|study|series|instance)_attachments?(_[a-z0-9_]+)?$")
    found = {operation["operationId"] for path, _, operation in _operations(spec)
             if "/attachments" in path}
    assert found
    assert not [name for name in found if not pattern.match(name)], sorted(found)
    for level in ("patient", "study", "series", "instance"):
        assert {f"list_{level}_attachments", f"list_{level}_attachment_operations",
                f"get_{level}_attachment_data", f"get_{level}_attachment_info",
                f"set_{level}_attachment", f"delete_{level}_attachment",
                f"verify_{level}_attachment_md5"} <= found, level


def _is_typed(schema: dict[str, Any]) -> bool:
    text = json.dumps(schema)
    return bool(schema) and ("$ref" in text or '"type"' in text)


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


def test_bodies_have_one_media_type(spec: dict[str, Any]) -> None:
    """One media type per raw body (see app/api/openapi.py): openapi-python-client
    generates modules that cannot be imported for a body with several."""
    body = spec["paths"]["/instances"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/dicom"}
    for path, method, operation in _operations(spec):
        content = operation.get("requestBody", {}).get("content", {})
        if content and not any("json" in t or "form" in t for t in content):
            assert len(content) == 1, f"{method.upper()} {path}: {sorted(content)}"


# --- the query arguments routes read are declared ---------------------------------------


@contextmanager
def _query_reads() -> Iterator[list[str]]:
    """Record the names routes look up in ``request.query_params`` (in this process)."""
    from starlette.datastructures import QueryParams
    names: list[str] = []
    originals = {method: getattr(QueryParams, method)
                 for method in ("get", "getlist", "__getitem__", "__contains__")}

    def recording(original: Any) -> Any:
        def method(self: QueryParams, key: Any, *args: Any, **kwargs: Any) -> Any:
            names.append(key)
            return original(self, key, *args, **kwargs)
        return method

    for method, original in originals.items():
        setattr(QueryParams, method, recording(original))
    try:
        yield names
    finally:
        for method, original in originals.items():
            setattr(QueryParams, method, original)


def _documented_query(spec: dict[str, Any], path: str, method: str = "get") -> set[str]:
    operation = spec["paths"][path][method]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_query_arguments_read_are_documented(spec: dict[str, Any], tmp_path: Path) -> None:
    """For a sample of routes: every query argument the route reads is in the spec, and
    every one the spec lists is read (with no argument given, all of them are looked up)."""
    from starlette.testclient import TestClient

    from app.config import Settings
    from app.main import create_app
    (tmp_path / "storage").mkdir()
    settings = Settings(storage_directory=str(tmp_path / "storage"),
                        dicom_server_enabled=False, remote_access_allowed=True,
                        authentication_enabled=False)
    with TestClient(create_app(settings)) as http:
        stored = http.post("/instances", content=make_dicom(patient_id="OPENAPI-Q"))
        assert stored.status_code == 200, stored.text
        ids = stored.json()
        patient, study, series, instance = (ids["ParentPatient"], ids["ParentStudy"],
                                            ids["ParentSeries"], ids["ID"])
        sample = [
            ("/patients", "/patients"), ("/studies", "/studies"),
            ("/series/{id}", f"/series/{series}"),
            ("/studies/{id}/series", f"/studies/{study}/series"),
            ("/series/{id}/study", f"/series/{series}/study"),
            ("/patients/{id}/shared-tags", f"/patients/{patient}/shared-tags"),
            ("/instances/{id}/tags", f"/instances/{instance}/tags"),
            ("/instances/{id}/header", f"/instances/{instance}/header"),
            ("/instances/{id}/metadata", f"/instances/{instance}/metadata"),
            ("/instances/{id}/attachments", f"/instances/{instance}/attachments"),
            ("/instances/{id}/preview", f"/instances/{instance}/preview"),
            ("/instances/{id}/frames/{frame}/rendered", f"/instances/{instance}/frames/0/rendered"),
            ("/instances/{id}/numpy", f"/instances/{instance}/numpy"),
            ("/series/{id}/numpy", f"/series/{series}/numpy"),
            ("/studies/{id}/archive", f"/studies/{study}/archive"),
            ("/changes", "/changes"), ("/exports", "/exports"), ("/jobs", "/jobs"),
            ("/modalities", "/modalities"), ("/peers", "/peers"),
        ]
        problems = []
        for template, url in sample:
            with _query_reads() as names:
                answer = http.get(url)
            assert answer.status_code == 200, f"GET {url}: {answer.status_code} {answer.text}"
            read = {QUERY_ALIASES.get(name, name) for name in names}
            documented = _documented_query(spec, template)
            if read - documented:
                problems.append(f"GET {template} reads undocumented {sorted(read - documented)}")
            if documented - read:
                problems.append(f"GET {template} documents unread {sorted(documented - read)}")
    assert not problems, "\n".join(problems)


def test_boolean_flags_stay_true_when_present(spec: dict[str, Any], server: LiveServer) -> None:
    """Declaring the flags changed no behaviour: ``?expand`` alone still expands."""
    assert "expand" in _documented_query(spec, "/studies")
    with server.client() as http:
        http.post("/instances", content=make_dicom(patient_id="OPENAPI-FLAG"))
        for query in ("?expand", "?expand=", "?expand=1", "?expand=true"):
            answer = http.get("/studies" + query)
            assert answer.status_code == 200, query
            assert all(isinstance(study, dict) for study in answer.json()), query
        for query in ("", "?expand=0", "?expand=false"):
            assert all(isinstance(study, str) for study in http.get("/studies" + query).json())


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
         str(root / package), "--meta", "none", "--config", str(GENERATOR_CONFIG)],
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


def test_generator_warns_of_nothing(generated: tuple[ModuleType, str]) -> None:
    """Every content type, body and answer is one the generator understands (with the
    content-type mapping of openapi/openapi-python-client.yaml that users pass too)."""
    _, output = generated
    assert "WARNING" not in output and "Warning" not in output, output[-4000:]


def test_every_generated_module_imports(generated: tuple[ModuleType, str]) -> None:
    package, _ = generated
    broken = []
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        try:
            importlib.import_module(module.name)
        except Exception as error:  # noqa: BLE001 — every broken module is named
            broken.append(f"{module.name}: {error!r}")
    assert not broken, broken


def test_generated_modules_have_readable_names(generated: tuple[ModuleType, str]) -> None:
    package, _ = generated
    api = Path(package.__file__).parent / "api"
    names = sorted(p.name for p in api.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert {"qido_rs", "wado_rs", "stow_rs", "instances", "studies", "system"} <= set(names)
    assert not [n for n in names if "dico_m" in n], names


def _generated_client(generated: tuple[ModuleType, str], server: LiveServer) -> tuple[
        Any, ModuleType, ModuleType, Callable[[str, str], ModuleType]]:
    """The generated package's client on *server*, its models and types modules, and a
    look-up of its operation modules by tag and operation name."""
    package, _ = generated

    def module(tag: str, operation: str) -> ModuleType:
        return importlib.import_module(f"{package.__name__}.api.{tag}.{operation}")

    client = package.Client(base_url=server.url, timeout=60, raise_on_unexpected_status=True)
    return (client, importlib.import_module(f"{package.__name__}.models"),
            importlib.import_module(f"{package.__name__}.types"), module)


def test_generated_client_finds_searches_and_downloads(
        generated: tuple[ModuleType, str], server: LiveServer) -> None:
    """Typed find body, QIDO-RS filters as arguments, a DICOM file and a ZIP as bytes."""
    client, models, types, module = _generated_client(generated, server)
    files = [make_dicom(patient_id="OPENAPI-2", patient_name="CLIENT^FIND", study_uid=uid,
                        StudyDescription=description)
             for uid, description in ((generate_uid(), "HEAD"), (generate_uid(), "KNEE"))]
    stored = [module("instances", "store_instance").sync(
        client=client, body=types.File(payload=io.BytesIO(data), file_name="ct.dcm",
                                       mime_type="application/dicom")) for data in files]
    assert all(isinstance(s, models.InstanceStored) for s in stored), stored

    find = module("system", "tools_find")
    request = find.ToolsFindFindRequest.from_dict({
        "Level": "Study", "Query": {"PatientID": "OPENAPI-2", "StudyDescription": "KNEE"}})
    found = find.sync(client=client, body=request)
    assert found == [stored[1].parent_study], found
    # Typed fields: the same request built from the class's own arguments.
    level = next(v for v in type(request.level) if v.value == "Study")
    assert find.sync(client=client, body=find.ToolsFindFindRequest(
        level=level, query=request.query)) == found

    search = module("qido_rs", "dicomweb_search_studies")
    study_uid = pydicom.dcmread(io.BytesIO(files[0])).StudyInstanceUID
    answers = search.sync(client=client, patient_id="OPENAPI-2", study_description="HEAD",
                          includefield=["StudyDescription"], limit=10)
    assert isinstance(answers, list) and len(answers) == 1, answers
    assert answers[0].to_dict()["0020000D"]["Value"] == [study_uid]
    assert len(search.sync(client=client, patient_id="OPENAPI-2")) == 2
    assert search.sync(client=client, patient_id="OPENAPI-2", limit=1, offset=1)

    file = module("instances", "get_instance_file").sync(client=client, id=stored[0].id)
    assert isinstance(file, types.File) and file.payload.read() == files[0]
    archive = module("studies", "get_study_archive").sync(client=client,
                                                          id=stored[1].parent_study)
    assert isinstance(archive, types.File)
    with zipfile.ZipFile(archive.payload) as zipped:
        members = [zipped.read(name) for name in zipped.namelist()]
    assert members == [files[1]]


def test_generated_client_uploads_browses_and_deletes(
        generated: tuple[ModuleType, str], server: LiveServer) -> None:
    client, models, types, module = _generated_client(generated, server)
    data = make_dicom(patient_id="OPENAPI-1", patient_name="CLIENT^GENERATED")
    body = types.File(payload=io.BytesIO(data), file_name="ct.dcm",
                      mime_type="application/dicom")
    stored = module("instances", "store_instance").sync(client=client, body=body)
    assert isinstance(stored, models.InstanceStored), stored
    assert stored.status == "Success"

    patients = module("patients", "list_patients").sync(client=client)
    assert stored.parent_patient in patients

    # A declared query argument: ?expand=true answers typed resources.
    studies = module("studies", "list_studies").sync(client=client, expand=True)
    assert studies and all(isinstance(s, models.StudyResource) for s in studies), studies
    mine = next(s for s in studies if s.id == stored.parent_study)
    assert mine.parent_patient == stored.parent_patient
    assert mine.patient_main_dicom_tags["PatientID"] == "OPENAPI-1"
    ids = module("studies", "list_studies").sync(client=client, expand=False, limit=1)
    assert isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], str), ids

    jobs = module("jobs", "list_jobs").sync(client=client, expand=True)
    assert isinstance(jobs, list), jobs

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
        check("/instances/{id}/attachments/{name}/info",
              http.get(f"/instances/{ids['ID']}/attachments/dicom/info").json())
        check("/tools/lookup", http.post("/tools/lookup", content=b"OPENAPI-2").json(), "post")
        modified = http.post(f"/studies/{ids['ParentStudy']}/modify",
                             json={"Replace": {"StudyDescription": "OPENAPI"}})
        assert modified.status_code == 200, modified.text
        check("/studies/{id}/modify", modified.json(), "post")
        check("/jobs", http.get("/jobs").json())
        check("/jobs", http.get("/jobs?expand").json())
        check("/modalities", http.get("/modalities?expand").json())
        check("/peers", http.get("/peers?expand").json())
        missing = http.get("/patients/0000")
        assert missing.status_code == 404
        check("/patients/{id}", missing.json(), status="404")
        check("/patients/{id}", http.delete(f"/patients/{ids['ParentPatient']}").json(),
              "delete")
