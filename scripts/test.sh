#!/usr/bin/env bash
# Run the whole test suite; installs what it needs first (Python packages into
# ./.venv, and Debian packages for the real servers and browser when missing).
source "$(dirname "$0")/_venv.sh"
install_package test
cd "$ROOT"
set +e
"$PY" -m pytest -q "$@" tests
status=$?
[ $status -eq 5 ] && echo "no tests ran" >&2
exit $status
