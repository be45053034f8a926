"""``POST /tools/create-dicom``: build an instance (or a series) and store it."""

from __future__ import annotations

from typing import Any

from app.errors import NotImplementedYet
from app.services.context import ServerContext


def create_dicom(context: ServerContext, request: Any, origin: dict[str, str]) -> dict[str, Any]:
    raise NotImplementedYet("create-dicom")
