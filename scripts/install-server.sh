#!/usr/bin/env bash
# Install haloy on a server: Docker (from the distribution), the `haloy` system user, a venv
# under /opt/haloy/<version>, `haloyd init`, and the two systemd units. Safe to run again.
#
#   sudo scripts/install-server.sh [--api-domain api.example.com]
#   sudo scripts/install-server.sh --version 0.2.0          # from the package index
#   sudo scripts/install-server.sh --wheel dist/haloy-0.1.0-cp311-cp311-linux_x86_64.whl
#
# Options:
#   --version V       install haloy==V from the package index
#   --wheel PATH      install this wheel (default: build one from the checkout beside this script)
#   --find-links DIR  install dependencies only from wheels in DIR (offline; implies --no-index)
#   --api-domain D    host name the API answers on through the proxy (TLS)
#   --skip-docker     do not install Docker (it must answer when `haloyd init` runs)
#   --prefix DIR      lay every path under DIR (tests); units then name the prefixed paths
#   --no-start        write everything, start nothing
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HALOY_USER=haloy
VERSION="" WHEEL="" FIND_LINKS="" API_DOMAIN="" SKIP_DOCKER=0 PREFIX="" NO_START=0

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --version) VERSION="${2:?--version needs a value}"; shift 2 ;;
        --wheel) WHEEL="${2:?--wheel needs a path}"; shift 2 ;;
        --find-links) FIND_LINKS="${2:?--find-links needs a dir}"; shift 2 ;;
        --api-domain) API_DOMAIN="${2:?--api-domain needs a host name}"; shift 2 ;;
        --skip-docker) SKIP_DOCKER=1; shift ;;
        --prefix) PREFIX="${2:?--prefix needs a dir}"; PREFIX="${PREFIX%/}"; shift 2 ;;
        --no-start) NO_START=1; shift ;;
        -h|--help) usage 0 ;;
        *) printf 'unknown option: %s\n\n' "$1" >&2; usage 2 ;;
    esac
done

OPT_DIR="$PREFIX/opt/haloy"
BIN_DIR="$PREFIX/usr/local/bin"
CONFIG_DIR="$PREFIX/etc/haloy"
DATA_DIR="$PREFIX/var/lib/haloy"
UNIT_DIR="$PREFIX/etc/systemd/system"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# --- checks -----------------------------------------------------------------------------
[ "$(uname -s)" = Linux ] || die "haloy servers run on Linux (this is $(uname -s))"
[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...): it creates a user, /opt/haloy and units"
UNIT_SRC="$SCRIPT_DIR/../deploy/systemd"
# The templates live in the repository, not in the wheel: run this script from a checkout.
[ -f "$UNIT_SRC/haloyd.service" ] || die "unit templates not found in $UNIT_SRC (run this \
script from a haloy checkout)"
# The same test as sd_booted(3): systemd is the running init system.
if [ -d /run/systemd/system ]; then SYSTEMD=1; else SYSTEMD=0; fi
if [ "$SYSTEMD" -eq 0 ]; then
    warn "systemd is not the init system here: units are written but nothing is started"
fi

apt_install() {
    command -v apt-get >/dev/null || die "missing $*, and no apt-get to install it: install it first"
    log "installing $* from the distribution"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

python_ok() { python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
python_ok || apt_install python3 python3-venv
python_ok || die "haloy needs Python 3.11+ with the venv module (python3 -m venv)"

if [ "$SKIP_DOCKER" -eq 0 ]; then
    command -v dockerd >/dev/null || apt_install docker.io
    if [ "$SYSTEMD" -eq 1 ] && [ "$NO_START" -eq 0 ]; then systemctl enable --now docker >/dev/null; fi
fi

# --- user -------------------------------------------------------------------------------
# haloyd reaches Docker through the socket's group. The docker.io package makes the group;
# with --skip-docker it may not exist yet, and making it first is what the package does too.
getent group docker >/dev/null || groupadd --system docker
if ! id -u "$HALOY_USER" >/dev/null 2>&1; then
    log "creating system user $HALOY_USER"
    useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "haloy daemon and proxy" "$HALOY_USER"
fi
usermod -a -G docker "$HALOY_USER"

# --- venv -------------------------------------------------------------------------------
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PIP_SOURCE=()
[ -n "$FIND_LINKS" ] && PIP_SOURCE=(--no-index --find-links "$FIND_LINKS")

if [ -z "$WHEEL" ] && [ -z "$VERSION" ]; then
    [ -f "$SCRIPT_DIR/../pyproject.toml" ] || die "no --wheel or --version given and no \
checkout beside this script (give --version X.Y.Z)"
    log "building a wheel from $(cd "$SCRIPT_DIR/.." && pwd)"
    # A C compiler and the Python headers let the build compile haloy-proxy's hot path
    # (setup.py, mypyc): about half the proxy's CPU per request. Best effort: without them
    # (no apt, offline) the wheel is pure Python, which works the same, slower.
    if ! { command -v gcc >/dev/null && python3 -c 'import sysconfig, os, sys
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; }; then
        (apt_install gcc python3-dev) || log "no C compiler: haloy-proxy's hot path stays pure Python"
    fi
    python3 -m venv "$WORK/build"
    "$WORK/build/bin/pip" wheel -q --no-deps "${PIP_SOURCE[@]}" -w "$WORK" "$SCRIPT_DIR/.."
    WHEEL="$(ls "$WORK"/haloy-*.whl)"
fi
if [ -n "$WHEEL" ]; then
    [ -f "$WHEEL" ] || die "wheel not found: $WHEEL"
    WHEEL="$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")"
    # Wheel names are <name>-<version>-<tags>.whl (PEP 427); the version names the venv dir.
    VERSION="$(basename "$WHEEL" | cut -d- -f2)"
    REQUIREMENT="$WHEEL"
else
    REQUIREMENT="haloy==$VERSION"
fi

VENV="$OPT_DIR/$VERSION"
mkdir -p "$OPT_DIR"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
log "installing haloy $VERSION into $VENV"
"$VENV/bin/pip" install -q "${PIP_SOURCE[@]}" "$REQUIREMENT"
# A wheel rebuilt from a checkout keeps its version number; reinstall it so re-runs take it.
[ -n "$WHEEL" ] && "$VENV/bin/pip" install -q --no-deps --force-reinstall "$WHEEL"
"$VENV/bin/haloyd" --version >/dev/null || die "$VENV/bin/haloyd does not run"
# Flip `current` atomically: a new symlink renamed over the old one.
ln -sfn "$VERSION" "$OPT_DIR/.current.new" && mv -T "$OPT_DIR/.current.new" "$OPT_DIR/current"
mkdir -p "$BIN_DIR"
for cmd in haloyd haloy-proxy; do ln -sfn "$OPT_DIR/current/bin/$cmd" "$BIN_DIR/$cmd"; done

# --- haloyd init ------------------------------------------------------------------------
HALOYD=("$BIN_DIR/haloyd")
DIRS=(--config-dir "$CONFIG_DIR" --data-dir "$DATA_DIR")
if [ -f "$CONFIG_DIR/haloyd.yaml" ] && [ -f "$CONFIG_DIR/.env" ]; then
    log "already initialised ($CONFIG_DIR): keeping the config and the API token"
    if [ -n "$API_DOMAIN" ]; then "${HALOYD[@]}" config set api.domain "$API_DOMAIN" "${DIRS[@]}"; fi
else
    log "haloyd init"
    "${HALOYD[@]}" init "${DIRS[@]}" ${API_DOMAIN:+--api-domain "$API_DOMAIN"} >/dev/null
fi
# init ran as root; both services run as $HALOY_USER and must own their files.
chown -R "$HALOY_USER:$HALOY_USER" "$CONFIG_DIR" "$DATA_DIR"

# --- units ------------------------------------------------------------------------------
render_unit() {  # render_unit NAME: the template from deploy/systemd with this install's paths
    sed -e "s#@BIN_DIR@#$BIN_DIR#g" -e "s#@CONFIG_DIR@#$CONFIG_DIR#g" \
        -e "s#@DATA_DIR@#$DATA_DIR#g" -e "s#@USER@#$HALOY_USER#g" "$UNIT_SRC/$1"
}
mkdir -p "$UNIT_DIR"
for unit in haloy-proxy.service haloyd.service; do
    render_unit "$unit" >"$WORK/$unit"
    install -m 0644 "$WORK/$unit" "$UNIT_DIR/$unit"
done

# --- start ------------------------------------------------------------------------------
if [ "$SYSTEMD" -eq 1 ] && [ "$NO_START" -eq 0 ] && [ -z "$PREFIX" ]; then
    systemctl daemon-reload
    systemctl enable haloy-proxy.service haloyd.service >/dev/null 2>&1
    # The proxy first, so haloyd's first snapshot has somewhere to go. A running proxy is
    # left alone: restarting it would drop connections (upgrade-server.sh handles that).
    systemctl start haloy-proxy.service
    # haloyd restarts safely at any time: the proxy keeps serving the last snapshot.
    systemctl restart haloyd.service
    systemctl is-active --quiet haloy-proxy.service || die "haloy-proxy did not start: \
journalctl -u haloy-proxy"
    STARTED="started haloy-proxy, then haloyd (logs: journalctl -u haloy-proxy -u haloyd)"
else
    STARTED="not started. With systemd: systemctl daemon-reload && systemctl enable --now \
haloy-proxy haloyd. Elsewhere run, as user $HALOY_USER, the ExecStart lines of
  $UNIT_DIR/haloy-proxy.service (needs CAP_NET_BIND_SERVICE for ports 80/443), then
  $UNIT_DIR/haloyd.service"
fi

# --- summary ----------------------------------------------------------------------------
DOMAIN="$("${HALOYD[@]}" config get api.domain "${DIRS[@]}" 2>/dev/null || true)"
if [ -n "$DOMAIN" ] && [ "$DOMAIN" != None ]; then
    URL="https://$DOMAIN"
else
    URL="http://$("${HALOYD[@]}" config get api.listen "${DIRS[@]}")"
fi
TOKEN="$(sed -n 's/^HALOY_API_TOKEN=//p' "$CONFIG_DIR/.env" | tr -d "\"'")"
cat <<EOF

haloy $VERSION installed in $VENV
  services: $STARTED
  API URL:  $URL
  token:    $TOKEN   (in $CONFIG_DIR/.env)

On your development machine, run:
  haloy server add $URL $TOKEN
EOF
