#!/usr/bin/env bash
# Upgrade haloy on a server without dropping traffic: install the new version beside the old
# one (/opt/haloy/<version>), flip /opt/haloy/current, restart haloyd (the proxy keeps
# serving meanwhile), then take over haloy-proxy gracefully (`haloy-proxy reload`: new workers
# running the new code serve before the old ones drain), on every upgrade.
#
#   sudo scripts/upgrade-server.sh --version 0.2.0
#   sudo scripts/upgrade-server.sh --wheel dist/haloy-0.2.0-py3-none-any.whl
#
# Options:
#   --version V       upgrade to haloy==V from the package index
#   --wheel PATH      upgrade to this wheel (default: build one from the checkout beside this script)
#   --find-links DIR  install dependencies only from wheels in DIR (offline)
#   --prefix DIR      the --prefix the server was installed with (tests)
#   --no-restart      install and flip `current`, restart nothing (say what to restart)
# The previous version stays in /opt/haloy for a rollback: `ln -sfn <old> /opt/haloy/current`
# and restart haloyd.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="" NO_RESTART=0
INSTALL_ARGS=()

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --version|--wheel|--find-links) INSTALL_ARGS+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
        --prefix) PREFIX="${2:?--prefix needs a dir}"; PREFIX="${PREFIX%/}"; shift 2 ;;
        --no-restart) NO_RESTART=1; shift ;;
        -h|--help) usage 0 ;;
        *) printf 'unknown option: %s\n\n' "$1" >&2; usage 2 ;;
    esac
done

OPT_DIR="$PREFIX/opt/haloy"
[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"
[ -L "$OPT_DIR/current" ] || die "haloy is not installed here ($OPT_DIR/current is missing); \
run scripts/install-server.sh first"
if [ -d /run/systemd/system ] && [ -z "$PREFIX" ]; then SYSTEMD=1; else SYSTEMD=0; fi

# The proxy accepts snapshots of exactly its own schema version (haloy.wire.snapshot).
schema_of() { "$OPT_DIR/$1/bin/python" -c \
    'from haloy.wire.snapshot import SCHEMA_VERSION; print(SCHEMA_VERSION)'; }

OLD="$(readlink "$OPT_DIR/current")"
OLD_SCHEMA="$(schema_of "$OLD")"

# install-server.sh does the install-beside + atomic flip, keeps the config and token, and
# re-renders the units; we own every restart, so it must start nothing.
[ -n "$PREFIX" ] && INSTALL_ARGS+=(--prefix "$PREFIX")
"$SCRIPT_DIR/install-server.sh" --skip-docker --no-start "${INSTALL_ARGS[@]}" >/dev/null

NEW="$(readlink "$OPT_DIR/current")"
NEW_SCHEMA="$(schema_of "$NEW")"
if [ "$NEW" = "$OLD" ]; then
    log "haloy $NEW reinstalled in place"
else
    log "haloy $OLD -> $NEW (the old version stays in $OPT_DIR/$OLD for a rollback)"
fi
if [ "$OLD_SCHEMA" = "$NEW_SCHEMA" ]; then
    log "snapshot schema unchanged ($NEW_SCHEMA)"
else
    # haloyd first: it writes the snapshot file in the new schema, which the new proxy
    # workers load; the old workers keep the last routes they accepted meanwhile.
    log "snapshot schema $OLD_SCHEMA -> $NEW_SCHEMA: the proxy takeover brings the new schema"
fi

if [ "$NO_RESTART" -eq 1 ] || [ "$SYSTEMD" -eq 0 ]; then
    echo "restart needed: haloyd"
    echo "then take over the proxy: haloy-proxy reload (systemctl reload haloy-proxy)"
    echo "  (systemd: systemctl restart haloyd && systemctl reload haloy-proxy)"
    exit 0
fi

systemctl daemon-reload
log "restarting haloyd (the proxy keeps serving the last snapshot meanwhile)"
systemctl restart haloyd.service
# ExecReload runs `haloy-proxy reload`: new workers start from /opt/haloy/current, load the
# snapshot, serve; only then do the old workers drain and exit. The unit's main pid stays.
log "taking over haloy-proxy (new workers serve before the old ones drain)"
proxy_supervised() {
    local pid
    pid="$(systemctl show -p MainPID --value haloy-proxy.service)"
    [ "${pid:-0}" != 0 ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '--supervise'
}
if proxy_supervised; then
    systemctl reload haloy-proxy.service || die "haloy-proxy reload failed (its old workers \
keep serving the last routes): journalctl -u haloy-proxy says why; fix it, then \
systemctl reload haloy-proxy"
elif [ "$OLD_SCHEMA" != "$NEW_SCHEMA" ]; then
    # Started before graceful takeover existed (no --supervise): it cannot reload, and it must
    # speak the new schema, so restart it (connections in that second are refused).
    log "haloy-proxy runs without --supervise: restarting it (once; later upgrades reload)"
    systemctl restart haloy-proxy.service
else
    log "haloy-proxy runs without --supervise and keeps running $OLD; restart it once to"
    log "enable graceful takeovers: systemctl restart haloy-proxy"
fi
systemctl is-active --quiet haloyd.service || die "haloyd did not start: journalctl -u haloyd"
echo "upgraded to haloy $NEW"
