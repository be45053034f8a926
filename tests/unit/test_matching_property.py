"""Property test: the SQL engine (app.index.find) answers like the reference matcher.

A temporary SQLite index, migrated like production, is filled through the real parser and
repository (``parse_instance`` + ``repository.store_instance``) with random patients,
studies, series and instances: names with accents, case and ``^``, dates, times,
modalities, accession numbers, UIDs, a tag without a column (InstitutionName) and a tag
that is no main tag (EchoTime); some patients get studies whose patient tags differ (the
study keeps its own copy, as in Orthanc). Hypothesis then draws ``/tools/find`` queries
(every level, every constraint kind, CaseSensitive true and false) and the answer of the
engine must be exactly the resources the pure-Python matcher selects on the same data.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.dicom.levels import Level
from app.dicom.matching import Kind, WildcardNotAllowed
from app.dicom.parse import parse_instance
from app.index import find as index_find
from app.index import repository
from app.index.db import Database, migrate
from app.services.find import build_rest_query
from tests.helpers import _database_url, _drop_database, make_dicom

ALPHABET = "abcXYZéÉüÜçÇøØñ^ -"
LEVELS = (Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE)
# keyword -> level of its main tag (EchoTime: None, no main tag)
TAGS: dict[str, Level | None] = {
    "PatientName": Level.PATIENT, "PatientID": Level.PATIENT, "PatientSex": Level.PATIENT,
    "PatientBirthDate": Level.PATIENT, "StudyDate": Level.STUDY, "StudyTime": Level.STUDY,
    "AccessionNumber": Level.STUDY, "StudyDescription": Level.STUDY,
    "InstitutionName": Level.STUDY, "Modality": Level.SERIES,
    "SeriesDescription": Level.SERIES, "InstanceNumber": Level.INSTANCE, "EchoTime": None,
}


@dataclass
class Resource:
    public_id: str
    tags: dict[str, str]  # values at this level (patient tags: as this study keeps them)
    parent: Resource | None = None
    first_instance_tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Corpus:
    database: Database
    resources: dict[Level, list[Resource]]
    values: dict[str, list[str]]


def _word(rng: random.Random, size: int = 6) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, size))).strip() or "x"


def _instances(rng: random.Random) -> Iterator[dict[str, object]]:
    for p in range(10):
        patient = {"PatientID": rng.choice(["P", "p", "Pé", "ID"]) + str(p),
                   "PatientName": _word(rng) + "^" + _word(rng),
                   "PatientSex": rng.choice(["M", "F", "O", "m"]),
                   "PatientBirthDate": f"19{rng.randint(30, 99)}0{rng.randint(1, 9)}15"}
        for s in range(rng.randint(1, 3)):
            if s and rng.random() < 0.5:  # a later study with other patient tags
                patient = {**patient, "PatientName": _word(rng) + "^" + _word(rng),
                           "PatientSex": rng.choice(["M", "F"])}
            study = {"StudyDate": f"20{rng.randint(10, 24)}{rng.randint(10, 12)}0{s + 1}",
                     "StudyTime": f"{rng.randint(10, 23)}{rng.randint(10, 59)}00",
                     "AccessionNumber": rng.choice(["acc", "ACC", "Acc", "A"]) + str(s),
                     "StudyDescription": _word(rng, 8),
                     "InstitutionName": rng.choice(["Hôpital", "HOPITAL", "clinic", ""]),
                     "study_uid": f"1.2.{p}.{s}"}
            for e in range(rng.randint(1, 2)):
                series = {"Modality": rng.choice(["CT", "MR", "mr", "PT", "US"]),
                          "SeriesDescription": _word(rng, 8), "series_uid": f"1.2.{p}.{s}.{e}"}
                for i in range(rng.randint(1, 3)):
                    yield {**patient, **study, **series, "sop_uid": f"1.2.{p}.{s}.{e}.{i}",
                           "InstanceNumber": i + 1, "EchoTime": rng.choice(["12.5", "90.25"])}


def _store(database: Database, values: dict[str, object]) -> tuple[str, ...]:
    fields = dict(values)
    data = make_dicom(patient_id=str(fields.pop("PatientID")),
                      patient_name=str(fields.pop("PatientName")),
                      study_uid=str(fields.pop("study_uid")),
                      series_uid=str(fields.pop("series_uid")),
                      sop_uid=str(fields.pop("sop_uid")),
                      instance_number=int(fields.pop("InstanceNumber")),  # type: ignore[arg-type]
                      modality=str(fields.pop("Modality")), size=2,
                      SpecificCharacterSet="ISO_IR 192", **fields)
    parsed = parse_instance(data)
    with database.write() as conn:
        repository.store_instance(conn, parsed, blob_key=parsed.ids.instance, file_size=len(data),
                                  md5="", now="20240101T000000", origin={}, overwrite=False)
    ids = parsed.ids
    return ids.patient, ids.study, ids.series, ids.instance


@pytest.fixture(scope="module")
def corpus() -> Iterator[Corpus]:
    """On SQLite, or on a fresh PostgreSQL database when PHAROS_TEST_DATABASE_URL is set."""
    with tempfile.TemporaryDirectory() as directory:
        url, name = _database_url(Path(directory))
        try:
            yield from _corpus(url or f"sqlite:///{Path(directory) / 'index.db'}")
        finally:
            _drop_database(name)


def _corpus(url: str) -> Iterator[Corpus]:
    migrate(url)
    database = Database(url)
    rng = random.Random(20240601)
    by_id: dict[Level, dict[str, Resource]] = {level: {} for level in LEVELS}
    values: dict[str, list[str]] = {k: [] for k in TAGS}
    for instance in _instances(rng):
        ids = _store(database, instance)
        text = {k: str(v) for k, v in instance.items()}
        for keyword in TAGS:
            values[keyword].append(text[keyword])
        parent = None
        for level, public_id in zip(LEVELS, ids, strict=True):
            if public_id not in by_id[level]:  # the first instance creates it
                by_id[level][public_id] = Resource(public_id, text, parent, text)
            parent = by_id[level][public_id]
    yield Corpus(database, {lvl: list(r.values()) for lvl, r in by_id.items()}, values)
    database.dispose()


def _value(resource: Resource, level: Level, keyword: str) -> str | None:
    """What Orthanc matches a resource on: its own or its ancestors' main tags (patient
    tags as the study keeps them), or the first instance's for a tag that is no main tag."""
    tag_level = TAGS[keyword]
    if tag_level is None:
        return resource.first_instance_tags.get(keyword)
    if tag_level.depth > level.depth:
        return None
    owner = resource
    target = Level.STUDY if tag_level == Level.PATIENT and level != Level.PATIENT else tag_level
    for _ in range(level.depth - target.depth):
        owner = owner.parent  # type: ignore[assignment]
    return owner.tags.get(keyword)


@st.composite
def queries(draw: st.DrawFn, corpus: Corpus) -> tuple[Level, dict[str, str], bool]:
    level = draw(st.sampled_from(LEVELS))
    allowed = [k for k, lvl in TAGS.items() if lvl is None or lvl.depth <= level.depth]
    query = {}
    for keyword in draw(st.lists(st.sampled_from(allowed), min_size=1, max_size=2,
                                 unique=True)):
        stored = draw(st.sampled_from(corpus.values[keyword]))
        other = draw(st.sampled_from(corpus.values[keyword]))
        form = draw(st.sampled_from(["same", "swapcase", "lower", "prefix", "infix", "any",
                                     "question", "list", "range", "low", "high", "star",
                                     "foreign"]))
        value = {
            "same": stored, "swapcase": stored.swapcase(), "lower": stored.lower(),
            "prefix": stored[:2] + "*", "infix": "*" + stored[1:3] + "*",
            "question": "?" + stored[1:], "any": stored[:1] + "?*",
            "list": stored + "\\" + other.swapcase(), "star": "*",
            "range": f"{min(stored, other)}-{max(stored, other)}",
            "low": stored + "-", "high": "-" + stored, "foreign": "ÿ" + stored,
        }[form]
        query[keyword] = value
    return level, query, draw(st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_sql_engine_agrees_with_the_reference_matcher(corpus: Corpus, data: st.DataObject
                                                      ) -> None:
    level, query, case_sensitive = data.draw(queries(corpus))
    try:
        find_query = build_rest_query(level, query, case_sensitive=case_sensitive)
    except Exception as error:  # noqa: BLE001 — only the refusal of wildcards is expected
        assert isinstance(error.__cause__, WildcardNotAllowed), error
        return
    constraints = [i.constraint for i in find_query.constraints
                   if i.constraint.kind != Kind.UNIVERSAL]
    lower_level = any(TAGS[c.keyword] is not None and TAGS[c.keyword].depth > level.depth
                      for c in constraints)  # type: ignore[union-attr]
    expected = set() if lower_level else {
        r.public_id for r in corpus.resources[level]
        if all(c.matches(_value(r, level, c.keyword)) for c in constraints)}
    with corpus.database.read() as conn:
        pks = index_find.find_pks(conn, find_query)
        answer = [r.public_id for r in repository.get_rows_by_pk(conn, level, pks)]
    assert len(answer) == len(set(answer))
    assert set(answer) == expected, (level, query, case_sensitive)


def test_the_corpus_exercises_the_rules(corpus: Corpus) -> None:
    """Divergent study copies of patient tags, accents and mixed case are really there."""
    studies = corpus.resources[Level.STUDY]
    assert any(s.tags["PatientName"] != s.parent.tags["PatientName"]  # type: ignore[union-attr]
               for s in studies)
    names = corpus.values["PatientName"]
    assert any(not n.isascii() for n in names) and any(n != n.upper() for n in names)
    assert len(corpus.resources[Level.INSTANCE]) >= 20
