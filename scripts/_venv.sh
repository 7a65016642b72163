# Sourced by the other scripts: make ./.venv (once) and install the package into it.
# Needs only python3; on Debian/Ubuntu without the venv module it installs python3-venv (as root).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
if [ ! -x "$PY" ] || ! "$PY" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$VENV"
        else
            echo "python3 -m venv failed: install your system's python3-venv package" >&2
            exit 1
        fi
    fi
fi
# Install the package (editable) with the extras asked for, quietly, only when something changed.
install_package() {
    local extras="$1" stamp="$VENV/.installed-$1"
    if [ ! -f "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ]; then
        "$PY" -m pip install -q --disable-pip-version-check -e "$ROOT[$extras]"
        touch "$stamp"
    fi
}
