"""Orthanc's timestamps: local time as ``YYYYMMDDTHHMMSS``."""

from __future__ import annotations

from datetime import datetime, timedelta


def now_stamp() -> str:
    return datetime.now().strftime("%Y%m%dT%H%M%S")


def stamp_seconds_ago(seconds: int) -> str:
    return (datetime.now() - timedelta(seconds=seconds)).strftime("%Y%m%dT%H%M%S")
