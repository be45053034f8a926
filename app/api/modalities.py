"""Routes of this area are filled in by their issue (see README)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
