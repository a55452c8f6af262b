# Shared set-up steps for scripts/test and scripts/demo. Source it; do not run it.
# Everything here is idempotent: a second run finds things in place and moves on quickly.

HALOY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HALOY_STATE="${HALOY_STATE:-$HALOY_ROOT/.state}"
VENV="$HALOY_ROOT/.venv"

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root_or_sudo() {
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
}

# apt_install PKG... — install the Debian packages that are missing, once.
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    need_root_or_sudo
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_venv — a virtualenv with haloy installed editable, with extras "$1" (e.g. dev).
ensure_venv() {
    local extras="${1:-}"
    local stamp="$VENV/.haloy-installed${extras:+-$extras}"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        python3 -m venv "$VENV" || { apt_install python3-venv; python3 -m venv "$VENV"; }
    fi
    if [ ! -f "$stamp" ] || [ "$HALOY_ROOT/pyproject.toml" -nt "$stamp" ]; then
        log "installing haloy${extras:+[$extras]} into the venv"
        "$VENV/bin/pip" install -q -U pip >/dev/null
        "$VENV/bin/pip" install -q -e "$HALOY_ROOT${extras:+[$extras]}"
        touch "$stamp"
    fi
    ensure_native_build
}

# ensure_native_build — haloy-proxy's hot path is compiled with mypyc at install (setup.py);
# after an edit of its sources the build is stale (unused: the sources run instead), and a
# venv installed without a compiler has none. Rebuild it unless HALOY_NATIVE=0.
ensure_native_build() {
    local state
    state="$(native_state)"
    if [ "$state" != compiled ] && [ "${HALOY_NATIVE:-1}" != 0 ]; then
        log "building haloy-proxy's compiled hot path (it was $state)"
        "$VENV/bin/pip" install -q --no-deps -e "$HALOY_ROOT"
        state="$(native_state)"
    fi
    log "haloy-proxy hot path: $state"
}

# native_state — compiled, pure or stale: which build of the proxy's hot path the venv imports.
native_state() {
    HALOY_PROXY_PURE= "$VENV/bin/python" -c 'import haloy.proxy as p; print(p.NATIVE[0])'
}

# ensure_dockerd — a Docker engine answering on DOCKER_HOST or the default socket.
# Starts one (no iptables, no masquerade: containers cannot reach beyond this machine) if
# none answers, and records that we did so stop_dockerd can stop it again.
STARTED_DOCKERD=""
ensure_dockerd() {
    apt_install docker.io
    if docker info >/dev/null 2>&1; then return 0; fi
    mkdir -p "$HALOY_STATE"
    log "starting dockerd (log: $HALOY_STATE/dockerd.log)"
    need_root_or_sudo
    $SUDO dockerd --iptables=false --ip-masq=false >"$HALOY_STATE/dockerd.log" 2>&1 &
    STARTED_DOCKERD=$!
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && return 0
        kill -0 "$STARTED_DOCKERD" 2>/dev/null || { tail -20 "$HALOY_STATE/dockerd.log" >&2; die "dockerd exited"; }
        sleep 0.5
    done
    tail -20 "$HALOY_STATE/dockerd.log" >&2
    die "dockerd did not answer within 60 s"
}

stop_dockerd() {
    [ -n "$STARTED_DOCKERD" ] || return 0
    log "stopping the dockerd this script started"
    kill "$STARTED_DOCKERD" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.5; done
    # containerd is a child of dockerd and may outlive it for a moment
    pkill -f "containerd --config /var/run/docker/containerd" 2>/dev/null || true
    STARTED_DOCKERD=""
}
