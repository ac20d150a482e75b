#!/usr/bin/env bash
# Sets up a Debian machine (scripts/setup.sh) and rehearses a stack locally: its exact
# user-data booted in a Debian container, checked through the web server.
#   sudo bash scripts/rehearse.sh                 # the default stack (dev)
#   sudo bash scripts/rehearse.sh --stack NAME    # any stack in stacks/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m flasklab rehearse "$@"
