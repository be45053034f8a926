"""The prebuilt OHIF viewer on disk (laid out by ``scripts/fetch_ohif.py``) and its files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The default place `make ohif` fills: .ohif/dist at the top of the source tree.
DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent.parent / ".ohif" / "dist"

# Explicit types: the platform's mimetypes tables vary (application/wasm is required by
# WebAssembly.instantiateStreaming, text/javascript by module workers).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".txt": "text/plain; charset=utf-8",
    ".xml": "application/xml",
}

# Build outputs named by their content hash ("app.bundle.0f6159c501addfe9.js",
# "5130ccb17e3f3f5b.wasm") never change under the same name.
_HASHED_NAME = re.compile(r"(^|\.)[0-9a-f]{16,}\.[a-z0-9]+$")
IMMUTABLE = "max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class ViewerFile:
    """One file to send: the path on disk and the headers that go with it."""

    path: Path
    media_type: str
    headers: dict[str, str]


def viewer_directory(configured: str | None) -> Path:
    return Path(configured).expanduser() if configured else DEFAULT_DIRECTORY


def is_installed(directory: Path) -> bool:
    return (directory / "index.html").is_file()


def is_client_route(path: str) -> bool:
    """A path OHIF's router handles (``viewer``, ``segmentation/x``), not a missing asset."""
    last = path.rstrip("/").rpartition("/")[2]
    return "." not in last


def find_file(directory: Path, path: str, accept_encoding: str = "") -> ViewerFile | None:
    """The file under ``directory`` for a URL path, never outside it; gzip when accepted."""
    root = directory.resolve()
    candidate = (root / path.lstrip("/")).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return _with_encoding(candidate, accept_encoding)


def index_file(directory: Path, accept_encoding: str = "") -> ViewerFile:
    return _with_encoding(directory.resolve() / "index.html", accept_encoding)


def _with_encoding(path: Path, accept_encoding: str) -> ViewerFile:
    headers = {"Cache-Control": IMMUTABLE if _HASHED_NAME.search(path.name) else REVALIDATE}
    media_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    compressed = path.with_name(path.name + ".gz")
    if compressed.is_file():
        headers["Vary"] = "Accept-Encoding"
        if _accepts_gzip(accept_encoding):
            headers["Content-Encoding"] = "gzip"
            return ViewerFile(compressed, media_type, headers)
    return ViewerFile(path, media_type, headers)


def _accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, parameters = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = parameters.strip().lower()
            return not quality.startswith("q=") or _quality(quality[2:]) > 0
    return False


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0
