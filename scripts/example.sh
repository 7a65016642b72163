#!/usr/bin/env bash
# Run the README's example app on http://127.0.0.1:8080/ (another address: scripts/example.sh 127.0.0.1:9000);
# another example by name: scripts/example.sh site [address] runs examples/site/app.py
source "$(dirname "$0")/_venv.sh"
install_package example
app="$ROOT/examples/application.py"
if [ $# -gt 0 ] && [ -f "$ROOT/examples/$1/app.py" ]; then
    app="$ROOT/examples/$1/app.py"
    shift
fi
exec "$PY" "$app" "${1:-127.0.0.1:8080}"
