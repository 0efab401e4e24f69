#!/usr/bin/env bash
# Install PTM Triage into a virtual environment at .venv in the checkout.
#   bash scripts/setup.sh        the service
#   bash scripts/setup.sh test   the service and what its tests need
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
if [ "${1:-}" = "test" ]; then
  extras="[test]"
  # The browser tests drive Debian's Chromium (never a browser a tool downloads).
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "installing Debian's chromium and chromium-driver for the browser tests"
    as_root=""; [ "$(id -u)" -ne 0 ] && as_root="sudo"
    $as_root apt-get install -y -q chromium chromium-driver >/dev/null \
      || { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q chromium chromium-driver >/dev/null; }
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"
