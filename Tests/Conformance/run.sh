#!/usr/bin/env bash
# Runs the ecs-sim conformance suite with the official Huawei Cloud Python SDK.
# Usage: Tests/Conformance/run.sh PATH_TO_ECS_SIM
# The venv lives at ${CONFORMANCE_VENV:-.venv-conformance} (relative to the current directory).
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 ECS_SIM_BINARY" >&2
    exit 2
fi
binary="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${CONFORMANCE_VENV:-.venv-conformance}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q huaweicloudsdkecs==3.1.219
exec "$venv/bin/python" "$here/conformance.py" "$binary"
