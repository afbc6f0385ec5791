#!/usr/bin/env bash
# A private Python environment for the checks that need Python packages:
# chdb-core (modern ClickHouse, in-process) checks that the DDL and queries
# rendered for current ClickHouse releases parse and answer like 18.16's.
#
#   scripts/python-deps.sh        create or update target/pyenv
#   scripts/python-deps.sh env    print the variables the tests read
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/target/pyenv

if [ "${1:-}" = env ]; then
  echo "export PLUMBLINE_TEST_PYTHON=$venv/bin/python"
  exit 0
fi

# Pinned: the test compares against this release's behaviour (ClickHouse 26.9).
requirements=(chdb-core==26.9.0)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import chdb' 2>/dev/null; then
  echo "[python-deps] installing ${requirements[*]}" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
fi
