#!/usr/bin/env bash
# Runs the test suite (without the kernel differential tests, which need root and are run
# by .ci/run) on every Python 3.10-3.13 interpreter this machine has, each in its own venv
# under .venvs/. Usage: tools/pyversions.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
found=0
for minor in 10 11 12 13; do
    py=$(command -v "python3.$minor" || true)
    if [ -z "$py" ] || ! "$py" -c 'import sys' >/dev/null 2>&1; then
        echo "== python3.$minor: not installed, skipped"
        continue
    fi
    found=$((found + 1))
    venv=".venvs/py3$minor"
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    "$venv/bin/pip" install -q -e '.[test]'
    echo "== $("$venv/bin/python" --version)"
    if ! "$venv/bin/python" -m pytest -q -p no:cacheprovider --ignore=tests/kernel "$@"; then
        status=1
    fi
done
if [ "$found" -eq 0 ]; then
    echo "no python3.10-3.13 interpreter found" >&2
    exit 1
fi
exit $status
