#!/usr/bin/env bash
# Set up and run the tablet server on the embedded SQLite store with the bundled models.
# Extra arguments go to `khfsm serve` (see `khfsm serve --help`), e.g. --port 9000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/khfsm -v serve "$@"
