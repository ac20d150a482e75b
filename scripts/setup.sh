#!/usr/bin/env bash
# Installs what flasklab's tests and rehearsals need on a Debian machine (as root):
# Debian's tools that check generated configs and boot containers, and a virtualenv
# (.venv) with flasklab and its Python dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh: run me as root (sudo): I install Debian packages with apt-get." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    python3 python3-venv python3-pip git curl ca-certificates openssl \
    debootstrap systemd-container \
    cloud-init nginx-light shellcheck \
    apache2 libapache2-mod-wsgi-py3 uwsgi-core uwsgi-plugin-python3

# cloud-init and the web servers are here only for their checkers (cloud-init schema,
# nginx -t, apache2 -t, uwsgi --strict): keep them from configuring or serving on this
# machine. A rehearsal needs port 80.
touch /etc/cloud/cloud-init.disabled
if [ -d /run/systemd/system ]; then
    systemctl disable --now nginx.service apache2.service >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
