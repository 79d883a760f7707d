#!/usr/bin/env bash
# Lint and run the test suite in the bootstrapped venv. Each run gets its own DDS domain, limited to this host.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CVPOSE_VENV:-$REPO/.venv}"
cd "$REPO"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export PYTHONUNBUFFERED=1
"$VENV/bin/ruff" check . || exit 1
"$VENV/bin/python" -m pytest -q -ra "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests"; exit 0
fi
exit "$rc"
