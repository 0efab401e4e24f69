#!/usr/bin/env bash
# Install PTM Triage into a virtual environment at .venv in the checkout.
#   bash scripts/setup.sh        the service
#   bash scripts/setup.sh test   the service and what its tests need
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"
