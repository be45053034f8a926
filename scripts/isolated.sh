#!/usr/bin/env bash
# Run a command in its own network namespace (its own loopback: ports 8042/4242/5000/5001
# are free there) with a private /tmp, so that several copies of Orthanc's suite (which
# uses fixed ports and fixed /tmp paths) or of port-bound tests can run side by side on
# one machine. Needs root (or user namespaces).
#
#   scripts/isolated.sh ../shared/tools/orthanc-suite.sh core test_changes
#
# PostgreSQL is reached through its Unix socket inside the namespace:
#   PHAROS_DATABASE_URL='postgresql+psycopg://postgres@/test?host=/var/run/postgresql'
set -euo pipefail
exec unshare --net --mount --fork -- bash -c '
  ip link set lo up
  mount -t tmpfs -o size=8g tmpfs /tmp
  exec "$@"' isolated "$@"
