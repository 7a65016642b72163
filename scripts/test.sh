#!/usr/bin/env bash
# Run the whole test suite; installs what it needs first (Python packages into
# ./.venv, and Debian packages for the real servers and browser when missing).
source "$(dirname "$0")/_venv.sh"
install_package test
# The real parts the tests run against: Redis and a headless Chromium with its driver.
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "installing ${missing[*]} ..." >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" >&2
    fi
fi
cd "$ROOT"
set +e
# arguments replace the default (everything): scripts/test.sh tests/reliability -s
if [ $# -eq 0 ]; then set -- tests; fi
"$PY" -m pytest -q "$@"
status=$?
[ $status -eq 5 ] && echo "no tests ran" >&2
exit $status
