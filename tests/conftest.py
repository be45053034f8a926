from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CORPUS, LiveServer, close_fork_server, live_server


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    close_fork_server()  # waits for it: its servers' CPU time counts in this process's


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live Pharos (real uvicorn, real sockets) shared by one test module."""
    with live_server(tmp_path_factory.mktemp("pharos")) as live:
        yield live


@pytest.fixture()
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A live Pharos for one test (for tests that need an empty archive or special config)."""
    with live_server(tmp_path) as live:
        yield live


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"sample corpus not found at {CORPUS} (set PHAROS_TEST_CORPUS)")
    return CORPUS
