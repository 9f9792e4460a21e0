#!/usr/bin/env bash
# Debian packages `make run` and the tests need: PostgreSQL 15 server, Redis server, Chromium for
# browser tests, gettext;
# with `bench`, also wrk (the API load generator of `make bench`).
# Installs only what is missing; needs root (as in CI) or sudo.
set -eu
missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15 postgresql-contrib-15)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
if [ "${1:-}" = bench ]; then command -v wrk >/dev/null 2>&1 || missing+=(wrk); fi
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
