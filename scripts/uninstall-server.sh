#!/usr/bin/env bash
# Remove haloy from a server: stop and remove the units, /opt/haloy and the command links.
# App containers keep running and are never removed; the script says how to remove them.
# The config (/etc/haloy: haloyd.yaml, API token) and data (/var/lib/haloy: certificates,
# history) are kept unless --purge, which also removes the `haloy` user.
#
#   sudo scripts/uninstall-server.sh [--purge]
#
# Options:
#   --purge       also remove /etc/haloy, /var/lib/haloy and the haloy user
#   --prefix DIR  the --prefix the server was installed with (tests)
set -euo pipefail

HALOY_USER=haloy
PREFIX="" PURGE=0

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --purge) PURGE=1; shift ;;
        --prefix) PREFIX="${2:?--prefix needs a dir}"; PREFIX="${PREFIX%/}"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) printf 'unknown option: %s\n\n' "$1" >&2; usage 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"

OPT_DIR="$PREFIX/opt/haloy"
BIN_DIR="$PREFIX/usr/local/bin"
CONFIG_DIR="$PREFIX/etc/haloy"
DATA_DIR="$PREFIX/var/lib/haloy"
UNIT_DIR="$PREFIX/etc/systemd/system"
UNITS=(haloyd.service haloy-proxy.service)

if [ -d /run/systemd/system ] && [ -z "$PREFIX" ]; then
    log "stopping haloyd, then haloy-proxy"
    systemctl disable --now "${UNITS[@]}" >/dev/null 2>&1 || true
fi
for unit in "${UNITS[@]}"; do rm -f "$UNIT_DIR/$unit"; done
if [ -d /run/systemd/system ] && [ -z "$PREFIX" ]; then systemctl daemon-reload; fi

for cmd in haloyd haloy-proxy; do
    # Only our own links: never a file someone else put there.
    if [ -L "$BIN_DIR/$cmd" ] && [[ "$(readlink "$BIN_DIR/$cmd")" == "$OPT_DIR/"* ]]; then
        rm -f "$BIN_DIR/$cmd"
    fi
done
log "removing $OPT_DIR"
rm -rf "$OPT_DIR"

if [ "$PURGE" -eq 1 ]; then
    log "removing $CONFIG_DIR, $DATA_DIR and user $HALOY_USER"
    rm -rf "$CONFIG_DIR" "$DATA_DIR"
    if id -u "$HALOY_USER" >/dev/null 2>&1; then userdel "$HALOY_USER"; fi
    KEPT="nothing else"
else
    KEPT="$CONFIG_DIR (config, API token) and $DATA_DIR (certificates, history); \
--purge removes them and the $HALOY_USER user"
fi

APPS=""
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    APPS="$(docker ps -a --filter label=dev.haloy.appName \
        --format '{{.Names}} ({{.Label "dev.haloy.appName"}})' | paste -sd ' ' -)"
fi
cat <<EOF

haloy is removed. Kept: $KEPT.
App containers were left running${APPS:+: $APPS}. To remove them and the network:
  docker rm -f \$(docker ps -aq --filter label=dev.haloy.appName)
  docker network rm haloy
EOF
