#!/usr/bin/env bash
# CI step: the project installed WITHOUT extras (`pip install .`, what the Docker image and
# most users do, not editable) in a fresh virtual environment must give a server that
# starts: every module imported at run time has its distribution among the base
# dependencies of pyproject.toml, and every file the server reads at run time (the
# Alembic migrations, the DICOM dictionaries, the Lua toolbox) is inside the package.
#
# Installs into a temporary venv, starts `pharos serve` on free ports with a temporary
# storage folder, checks that GET /system answers 200 with Orthanc's JSON and that the
# explorer's files (/ui/, package data) are served, stops it.
# Exit status 0 when all went well; the server's log is printed otherwise.
#
#   scripts/check-bare-install.sh            (from the repository root; ~1-2 min)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pharos-bare-install.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "bare install: fresh venv in $WORK"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --upgrade pip >/dev/null
# A copy of the tree, so that nothing (build/, *.egg-info) is written into the checkout
# and the installed package, not the checkout, is what runs.
mkdir "$WORK/src"
git ls-files -z | xargs -0 -I{} cp --parents {} "$WORK/src/" 2>/dev/null || cp -r . "$WORK/src"
"$WORK/venv/bin/pip" install -q "$WORK/src"

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
HTTP_PORT=$(free_port)
DICOM_PORT=$(free_port)
mkdir "$WORK/storage"
cat > "$WORK/orthanc.json" <<EOF
{
  "StorageDirectory": "$WORK/storage",
  "HttpPort": $HTTP_PORT,
  "DicomPort": $DICOM_PORT,
  "RemoteAccessAllowed": false
}
EOF
# Run from an empty folder: the checkout must not be importable from the working directory.
mkdir "$WORK/run"
(cd "$WORK/run" && exec "$WORK/venv/bin/pharos" serve --host 127.0.0.1 \
   --config "$WORK/orthanc.json" >"$WORK/server.log" 2>&1) &
SERVER_PID=$!

for _ in $(seq 120); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "bare install: the server exited before answering"; cat "$WORK/server.log"; exit 1
  fi
  if "$WORK/venv/bin/python" - "$HTTP_PORT" <<'EOF' 2>/dev/null
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/system", timeout=2) as answer:
    document = json.load(answer)
assert answer.status == 200 and "Version" in document and "DicomAet" in document, document
# The explorer's files are package data: shipped by `pip install .`, not read from a checkout.
for path in ("/ui/", "/ui/ui.css", "/ui/js/main.js", "/ui/js/views/lists.js", "/ui/favicon.svg"):
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}{path}", timeout=2) as answer:
        assert answer.status == 200 and answer.read(), path
EOF
  then
    echo "bare install: GET /system and the explorer's files answered 200; stopping the server"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    exit 0
  fi
  sleep 1
done
echo "bare install: no answer from /system within 120 s"; cat "$WORK/server.log"; exit 1
