"""``/tools/metrics-prometheus``: Orthanc's metrics and Pharos' process metrics, scraped
over HTTP and read with Prometheus' own parser, on one process and on several."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydicom.uid import generate_uid

from tests.helpers import live_server, make_dicom


def scrape(http) -> dict:
    """{family name: family} of a scrape (every sample parsed by Prometheus' parser)."""
    answer = http.get("/tools/metrics-prometheus")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def value(families: dict, name: str, **labels: str) -> float:
    """The value of one sample (0 when the series does not exist)."""
    for family in families.values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return sample.value
    return 0.0


def test_orthanc_and_process_metrics(tmp_path):
    study = generate_uid()
    with live_server(tmp_path) as live, live.client() as http:
        for number in range(3):
            assert http.post("/instances", content=make_dicom(
                patient_id="MET", study_uid=study, instance_number=number)).status_code == 200
        assert http.post("/instances", content=b"not dicom").status_code == 400
        instance = http.get("/instances").json()[0]
        for _ in range(4):
            assert http.get(f"/instances/{instance}").status_code == 200
        assert http.get("/no/such/route").status_code == 404

        families = scrape(http)
        raw = http.get("/tools/metrics-prometheus").text
        # Orthanc's names and shape: "name value timestamp", integers as integers.
        line = next(li for li in raw.splitlines() if li.startswith("orthanc_count_instances "))
        name, number, stamp = line.split()
        assert number == "3" and abs(int(stamp) / 1000 - time.time()) < 600
        assert value(families, "orthanc_count_instances") == 3
        assert value(families, "orthanc_count_studies") == 1
        assert value(families, "orthanc_count_patients") == 1
        assert value(families, "orthanc_count_series") == 3
        assert value(families, "orthanc_disk_size_mb") > 0
        assert value(families, "orthanc_last_change") >= 3 * 2
        for orthanc in ("orthanc_jobs_pending", "orthanc_jobs_running", "orthanc_jobs_success",
                        "orthanc_jobs_failed", "orthanc_jobs_completed", "orthanc_up_time_s",
                        "orthanc_uncompressed_size_mb"):
            assert families[orthanc].type == "gauge"

        # Pharos' process metrics, by route template.
        assert families["pharos_http_requests"].type == "counter"
        assert value(families, "pharos_http_requests_total", method="GET",
                     route="/instances/{id}", status="200") == 4
        assert value(families, "pharos_http_requests_total", method="POST",
                     route="/instances", status="400") == 1
        assert value(families, "pharos_http_requests_total", route="unmatched",
                     status="404") == 1
        histogram = families["pharos_http_request_duration_seconds"]
        assert histogram.type == "histogram"
        count = value(families, "pharos_http_request_duration_seconds_count", method="GET",
                      route="/instances/{id}")
        assert count == 4
        assert value(families, "pharos_http_request_duration_seconds_bucket", method="GET",
                     route="/instances/{id}", le="+Inf") == 4
        assert value(families, "pharos_ingest_total", origin="RestApi", status="Success") == 3
        assert value(families, "pharos_ingest_total", origin="RestApi", status="Failure") == 1
        assert value(families, "pharos_ingest_bytes_total", origin="RestApi") > 0
        assert value(families, "pharos_storage_bytes") == \
            int(http.get("/statistics").json()["TotalDiskSize"])

        # A job appears by state.
        assert http.post(f"/studies/{http.get('/studies').json()[0]}/archive",
                         json={"Asynchronous": True}).status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            families = scrape(http)
            if value(families, "orthanc_jobs_success") == 1:
                break
            time.sleep(0.2)
        assert value(families, "orthanc_jobs_success") == 1
        assert value(families, "orthanc_jobs_completed") == 1
        assert value(families, "pharos_jobs", state="Success") == 1

        # MetricsEnabled off: Orthanc answers an empty body, and nothing is counted.
        assert http.put("/tools/metrics", content="0").status_code == 200
        assert http.get("/tools/metrics").text == "0"
        assert http.get("/tools/metrics-prometheus").text == ""
        assert http.get(f"/instances/{instance}").status_code == 200
        assert http.put("/tools/metrics", content="1").status_code == 200
        families = scrape(http)
        assert value(families, "pharos_http_requests_total", method="GET",
                     route="/instances/{id}", status="200") == 4


@pytest.mark.parametrize("workers", [2])
def test_several_processes_answer_the_archives_figures(tmp_path, workers):
    """Requests spread over the HTTP worker processes; any process' scrape gives the sum."""
    with live_server(tmp_path, {"Pharos": {"HttpWorkers": workers}}) as live:
        for number in range(6):
            # A new connection each time: the kernel spreads them over the processes.
            with live.client() as http:
                assert http.post("/instances", content=make_dicom(
                    patient_id="MULTI", instance_number=number)).status_code == 200
        # /statistics, which nothing else asks (the start-up check's /system may be
        # answered more than once when the loaded machine makes it time out and retry).
        for _ in range(20):
            with live.client() as http:
                assert http.get("/statistics").status_code == 200
        deadline = time.monotonic() + 30
        while True:
            with live.client() as http:
                families = scrape(http)
            stored = value(families, "pharos_ingest_total", origin="RestApi", status="Success")
            asked = value(families, "pharos_http_requests_total", method="GET",
                          route="/statistics", status="200")
            if (stored, asked) == (6, 20) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        # The counts of every process converge to the sum.
        assert (stored, asked) == (6, 20)
        assert value(families, "orthanc_count_instances") == 6
