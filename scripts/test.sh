#!/usr/bin/env bash
# Sets up a Debian machine (scripts/setup.sh) and runs every test, including the
# rehearsals that boot each example stack in a Debian container.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Test-only tools, not in setup.sh, which a teacher runs to rehearse: a real browser opens
# the access sheet (tests/test_class_sheet.py); wrk loads a rehearsed server
# (benchmarks/serving.py).
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium wrk
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The docs (README's links aside): a broken link, anchor or a page left out of the nav
# fails here (mkdocs.yml's validation), built into a throwaway folder.
docs_site="$(mktemp -d)"
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$docs_site"
rm -rf "$docs_site"
# Side by side: each boot test's container has its own network, each check its own
# throwaway container; FLASKLAB_TEST_JOBS=1 runs them one after another.
exec .venv/bin/python -m pytest -n "${FLASKLAB_TEST_JOBS:-6}" --dist worksteal "$@"
