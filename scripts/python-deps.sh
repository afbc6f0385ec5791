#!/usr/bin/env bash
# A private Python environment for the checks that need Python packages:
# chdb-core (modern ClickHouse, in-process) checks that the DDL and queries
# rendered for current ClickHouse releases parse and answer like 18.16's; the
# openai and anthropic SDKs (over httpx2) are real LLM clients whose TLS
# plaintext the capture tests read (plumbline/tests/clients/python_sdk_client.py);
# google-genai (Google's Gemini SDK, also over httpx2) is the Gemini client of
# the scripted agent corpus (plumbline/tests/agents/corpus.py);
# NVIDIA's CUDA runtime and NCCL wheels hold the real libcudart.so.12 and
# libnccl.so.2 (about 480 MB) whose calls the GPU capture tests read, with no
# GPU needed (plumbline/tests/gpu); pytest is what the scripted `honest` agent
# really runs (plumbline/tests/agents).
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

# Pinned: the test compares against this release's behaviour (ClickHouse 26.9),
# the capture tests against these SDKs' requests and streams, and against
# these libraries' exported functions and return codes.
requirements=(
  chdb-core==26.9.0
  openai==3.54.0
  anthropic==2.12.0
  google-genai==3.6.1
  httpx2==2.16.2
  nvidia-cuda-runtime-cu12==12.9.79
  nvidia-nccl-cu12==2.32.3
  pytest==8.4.2
)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# True when every pinned requirement is installed at its pinned version.
satisfied() {
  "$venv/bin/python" - "${requirements[@]}" 2>/dev/null <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

for requirement in sys.argv[1:]:
    name, wanted = requirement.split("==")
    try:
        if version(name) != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
}
if ! satisfied; then
  echo "[python-deps] installing ${requirements[*]}" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
fi
