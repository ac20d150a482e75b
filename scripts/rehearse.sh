#!/usr/bin/env bash
# Sets up a Debian machine (scripts/setup.sh) and rehearses stacks locally: their exact
# user-data booted in Debian containers, each in a network of its own, checked through
# the web server. As root:
#   bash scripts/rehearse.sh                               # the default stack (dev)
#   bash scripts/rehearse.sh --stack NAME [--stack NAME]   # stacks in stacks/, side by side
#   bash scripts/rehearse.sh --all                         # every stack in stacks/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m flasklab rehearse "$@"
