#!/usr/bin/env bash
# Signing conformance check: compares a peer program against the official Huawei Cloud Python
# SDK signer (huaweicloudsdkcore 3.1.219).  See oracle.py for the protocol and the checks.
#
# Usage: Tests/SigningOracle/run.sh PEER_EXECUTABLE [oracle options...] [-- PEER_ARGS...]
#   e.g. Tests/SigningOracle/run.sh .build/debug/SigningPeer
#        Tests/SigningOracle/run.sh Tests/SigningOracle/fake_peer.py -- --bug
#
# The SDK is installed into a virtualenv at ${ORACLE_VENV:-.venv-oracle} (relative to the current
# directory), created on first use.  ${PYTHON:-python3} creates it.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 PEER_EXECUTABLE [--count N] [--seed S] [--case I] [--verbose] [-- PEER_ARGS...]" >&2
    exit 2
fi

SDK_REQUIREMENT="huaweicloudsdkcore==3.1.219"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${ORACLE_VENV:-.venv-oracle}"

if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
# A no-op (no network access) when the pinned version is already installed.
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$SDK_REQUIREMENT"

exec "$venv/bin/python" "$here/oracle.py" "$@"
