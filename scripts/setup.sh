#!/usr/bin/env bash
# Installs what flasklab's tests and rehearsals need on a Debian machine (as root; no
# sudo needed): the tools that build and boot the rehearsal's containers, and a
# virtualenv (.venv) with flasklab and its Python dependencies.
#
# Nothing else: no web server, no cloud-init, no config checker runs on this machine.
# The tests check the generated configs with Debian's own tools (nginx -t, apache2 -t,
# uwsgi, supervisor, shellcheck, cloud-init schema, ...) inside a cached image of the
# stack's Debian release (flasklab/rehearsal/image.py), built on first use. This script
# never starts, stops, enables, disables or reconfigures a service of this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh: run me as root: I install Debian packages with apt-get." >&2
    exit 1
fi

# python3-venv, python3-pip, git: the virtualenv below. curl, ca-certificates: downloads.
# openssl: the tests' certificates. debootstrap: the images. systemd-container
# (systemd-nspawn): the containers. iproute2, slirp4netns: each rehearsal's own network.
# openssh-client: the tests log in to rehearsed servers as `pulumi up` does to EC2's.
# pebble: Let's Encrypt's test ACME server, which issues a rehearsed `tls: letsencrypt`
# server its certificate (docs/letsencrypt.md); two programs, no service, started only by
# such a rehearsal, in its own network (a 2.7 MB download: the other rehearsals lose nothing).
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    python3 python3-venv python3-pip git curl ca-certificates openssl \
    debootstrap systemd-container iproute2 slirp4netns openssh-client pebble

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
