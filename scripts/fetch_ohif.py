#!/usr/bin/env python3
"""Fetch the prebuilt OHIF v3 viewer from the npm registry and lay it out for Pharos.

Run at set-up time (``make ohif``, which ``make serve`` and ``make test`` depend on), never
at run time: the server only serves what this script leaves in ``DEST`` (default
``.ohif/dist``, the default ``ViewerDirectory`` of the server).

Steps, all idempotent (a stamp file names the version and base path; nothing is done when
it matches):

1. ``npm pack @ohif/app@VERSION`` (the ordinary npm client, so registry mirrors and
   proxies configured for npm apply) and check the tarball against a pinned SHA-512;
2. extract ``package/dist`` without what the default modes never load: ``ort/`` (the
   ONNX runtime of the AI segmentation tools, 136 MB), ``dicom-microscopy-viewer/`` (the
   whole-slide mode, 20 MB) and ``*.map`` source maps (204 MB become 49 MB);
3. relocate the build from ``/`` (the ``PUBLIC_URL`` it was built with) to ``/ohif/``:
   ``window.PUBLIC_URL`` and the root-absolute ``href``/``src`` of ``index.html``, the
   webpack/rspack runtime public path of every entry chunk and worker
   (``__webpack_require__.p = "/"``), ``url(/...)`` in stylesheets and icon paths in
   ``manifest.json``; the manifest link gets ``crossorigin="use-credentials"`` so that it
   is fetched with the Basic credentials of a server with authentication;
4. write a ``.gz`` sibling next to every compressible file, which the server sends to
   clients that accept gzip (nginx's ``gzip_static`` idea: compress once, not per request).

The new tree is built next to ``DEST`` and swapped in with a rename, so a server never
sees a half-written viewer.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

DEFAULT_VERSION = "3.13.2"
BASE_PATH = "/ohif/"
# Bumped when the layout this script makes changes, so that `make ohif` redoes it.
LAYOUT = 2
STAMP_NAME = ".pharos-ohif.json"

# npm's "dist.integrity" of the tarballs we have checked (sha512, base64).
PINNED_INTEGRITY = {
    "3.13.2": "sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA==",
}

# Not needed by the default modes (basic viewer, segmentation, TMTV, ...): see the docstring.
PRUNED_DIRECTORIES = ("ort/", "dicom-microscopy-viewer/")
PRUNED_SUFFIXES = (".map",)
COMPRESSIBLE_SUFFIXES = (".js", ".mjs", ".css", ".html", ".json", ".svg", ".wasm", ".txt",
                         ".xml", ".ico")
MINIMUM_COMPRESSED_SIZE = 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--version", default=DEFAULT_VERSION, help="@ohif/app version")
    parser.add_argument("--dest", default=".ohif/dist", type=Path,
                        help="where the viewer goes (the server's ViewerDirectory)")
    parser.add_argument("--force", action="store_true", help="fetch even if up to date")
    args = parser.parse_args(argv)

    dest: Path = args.dest.resolve()
    wanted = {"package": "@ohif/app", "version": args.version, "base": BASE_PATH,
              "layout": LAYOUT}
    if not args.force and _read_stamp(dest) == wanted:
        (dest / STAMP_NAME).touch()  # newer than this script: make is satisfied
        print(f"OHIF {args.version} is up to date in {dest}")
        return 0
    if shutil.which("npm") is None:
        print("npm is not installed: cannot fetch the OHIF viewer", file=sys.stderr)
        return 2

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".ohif-fetch-") as work:
        work_path = Path(work)
        tarball = _npm_pack(f"@ohif/app@{args.version}", work_path)
        _check_integrity(tarball, PINNED_INTEGRITY.get(args.version))
        staged = work_path / "dist"
        kept, pruned = _extract_dist(tarball, staged)
        _relocate(staged, BASE_PATH)
        compressed = _precompress(staged)
        (staged / STAMP_NAME).write_text(json.dumps(wanted) + "\n", encoding="utf-8")
        _swap_in(staged, dest)
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    print(f"OHIF {args.version} installed in {dest}: {kept} files kept, {pruned} pruned, "
          f"{compressed} precompressed, {size / 1e6:.0f} MB")
    return 0


def _read_stamp(dest: Path) -> dict | None:
    try:
        return json.loads((dest / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _npm_pack(spec: str, into: Path) -> Path:
    """Download a package tarball with npm (which checks it against the registry's integrity)."""
    result = subprocess.run(
        ["npm", "pack", spec, "--pack-destination", str(into), "--json", "--silent"],
        cwd=into, check=True, stdout=subprocess.PIPE, text=True)
    filename = json.loads(result.stdout)[0]["filename"]
    # npm names scoped tarballs "ohif-app-3.13.2.tgz"; older npm versions used "@ohif/".
    return into / Path(filename).name


def _check_integrity(tarball: Path, expected: str | None) -> None:
    if expected is None:
        print(f"warning: no pinned checksum for {tarball.name}; trusting npm's check",
              file=sys.stderr)
        return
    algorithm, _, digest = expected.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if actual != digest:
        raise SystemExit(f"{tarball.name}: {algorithm} is {actual}, expected {digest}")


def _extract_dist(tarball: Path, staged: Path) -> tuple[int, int]:
    """Extract package/dist/ into ``staged``, regular files only, minus the pruned parts."""
    kept = pruned = 0
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            if not member.isfile() or not member.name.startswith("package/dist/"):
                continue
            relative = member.name[len("package/dist/"):]
            parts = Path(relative).parts
            if not relative or ".." in parts or Path(relative).is_absolute():
                continue
            if relative.startswith(PRUNED_DIRECTORIES) or relative.endswith(PRUNED_SUFFIXES):
                pruned += 1
                continue
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            kept += 1
    if not (staged / "index.html").is_file():
        raise SystemExit(f"{tarball.name} has no dist/index.html: not a prebuilt OHIF app")
    return kept, pruned


_ROOT_ATTRIBUTE = re.compile(r'((?:href|src)=")/(?!/)')
_PUBLIC_URL = re.compile(r'window\.PUBLIC_URL\s*=\s*"/"')
_RUNTIME_PUBLIC_PATH = re.compile(r'(__webpack_require__\.p\s*=\s*)"/"')
_CSS_ROOT_URL = re.compile(r'url\((["\']?)/(?!/)')
_JSON_ROOT_PATH = re.compile(r'("(?:src|start_url|scope)"\s*:\s*")/(?!/)')


def _relocate(staged: Path, base: str) -> None:
    """Rewrite the root-absolute paths of a build made for PUBLIC_URL=/ to ``base``."""
    index = staged / "index.html"
    html = index.read_text(encoding="utf-8")
    html = _PUBLIC_URL.sub(f'window.PUBLIC_URL="{base}"', html)
    html = _ROOT_ATTRIBUTE.sub(rf"\g<1>{base}", html)
    # Browsers fetch the web app manifest without credentials unless told otherwise, which
    # a server with authentication answers with 401 (and a console error).
    html = html.replace('<link rel="manifest" ', '<link rel="manifest" crossorigin="use-credentials" ')
    index.write_text(html, encoding="utf-8")
    for path in staged.rglob("*"):
        if path.suffix in (".js", ".mjs"):
            _rewrite(path, _RUNTIME_PUBLIC_PATH, rf'\g<1>"{base}"')
        elif path.suffix == ".css":
            _rewrite(path, _CSS_ROOT_URL, rf"url(\g<1>{base}")
        elif path.name == "manifest.json":
            _rewrite(path, _JSON_ROOT_PATH, rf"\g<1>{base}")


def _rewrite(path: Path, pattern: re.Pattern[str], replacement: str) -> None:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    new, count = pattern.subn(replacement, text)
    if count:
        path.write_text(new, encoding="utf-8", errors="surrogateescape")


def _precompress(staged: Path) -> int:
    count = 0
    for path in sorted(staged.rglob("*")):
        if (path.is_file() and path.suffix in COMPRESSIBLE_SUFFIXES
                and path.stat().st_size >= MINIMUM_COMPRESSED_SIZE):
            data = path.read_bytes()
            packed = gzip.compress(data, compresslevel=9, mtime=0)
            if len(packed) < len(data) * 0.9:
                path.with_name(path.name + ".gz").write_bytes(packed)
                count += 1
    return count


def _swap_in(staged: Path, dest: Path) -> None:
    old = dest.with_name(dest.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        os.replace(dest, old)
    os.replace(staged, dest)
    if old.exists():
        shutil.rmtree(old)


if __name__ == "__main__":
    sys.exit(main())
