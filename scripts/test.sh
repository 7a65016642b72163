#!/usr/bin/env bash
# Run the whole test suite; installs what it needs first (Debian packages for the
# real servers and browser when missing, then Python packages into ./.venv).
source "$(dirname "$0")/_venv.sh"
# The real parts the tests run against: Redis, a headless Chromium with its driver,
# and the servers of the deployment matrix (tests/test_deploy.py): nginx, lighttpd,
# Apache with its development files (pip builds mod_wsgi against them, below).
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
missing=()
have redis-server || missing+=(redis-server)
have chromium || missing+=(chromium)
have chromedriver || missing+=(chromium-driver)
have nginx || missing+=(nginx-light)
have lighttpd || missing+=(lighttpd)
have apache2 || missing+=(apache2)
have apxs || missing+=(apache2-dev)
if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "installing ${missing[*]} ..." >&2
        apt-get update -qq
        for i in "${!missing[@]}"; do  # releases without nginx-light have nginx
            if [ "${missing[$i]}" = nginx-light ] && ! apt-cache show nginx-light >/dev/null 2>&1; then
                missing[$i]=nginx
            fi
        done
        # the tests start their own servers on free ports: the system services are not started
        policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        fi
        installed=0
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || installed=$?
        if [ -n "$policy" ]; then rm -f "$policy"; fi
        if [ $installed -ne 0 ]; then echo "apt-get install ${missing[*]} failed ($installed)" >&2; fi
    else
        echo "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" >&2
    fi
fi
install_package test
# web.py's own test suite, which tests/test_other_suites.py runs while jobs print: from its sdist on PyPI
# (pinned to the web.py the package is tested with), unpacked once into .venv/web.py-0.76/
if [ ! -d "$VENV/web.py-0.76/tests" ]; then
    sdist="$(mktemp -d)"
    if "$PY" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d "$sdist" web.py==0.76 \
            && tar xzf "$sdist"/web*py-0.76.tar.gz -C "$sdist"; then
        rm -rf "$VENV/web.py-0.76" && mv "$sdist"/web*py-0.76/ "$VENV/web.py-0.76"
    else
        echo "could not fetch web.py 0.76's sdist: tests/test_other_suites.py will miss its test suite" >&2
    fi
    rm -rf "$sdist"
fi
cd "$ROOT"
set +e
# arguments replace the default (everything): scripts/test.sh tests/reliability -s
if [ $# -eq 0 ]; then set -- tests; fi
"$PY" -m pytest -q "$@"
status=$?
[ $status -eq 5 ] && echo "no tests ran" >&2
exit $status
