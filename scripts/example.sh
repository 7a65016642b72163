#!/usr/bin/env bash
# Run the README's example app on http://127.0.0.1:8080/ (another address: scripts/example.sh 127.0.0.1:9000)
source "$(dirname "$0")/_venv.sh"
install_package example
exec "$PY" "$ROOT/examples/application.py" "${1:-127.0.0.1:8080}"
