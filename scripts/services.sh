# shellcheck shell=bash
# Local development services for langfuse-rs.
#
# Source this file, then call the ensure_* functions you need:
#
#     source scripts/services.sh
#     ensure_packages; ensure_postgres; ensure_redis; ensure_python_venv; ensure_clickhouse
#
# Every function is idempotent: it installs only what is missing, starts only what is not running, and
# reuses a server that already answers on the standard port. Everything this file creates lives under
# .dev/ in the repository (gitignored); logs go to .dev/logs/. Servers started here keep running after the
# calling script exits; they are plain processes with pid files under .dev/, and `stop_services` stops them.
#
# The functions work under `set -euo pipefail` and do not rely on it: each returns non-zero with a
# message naming the service and its log file when something cannot be brought up.

LF_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LF_DEV_DIR="$LF_REPO_ROOT/.dev"
LF_LOG_DIR="$LF_DEV_DIR/logs"
LF_VENV="$LF_DEV_DIR/venv"
LF_CHDB_SERVER="$LF_REPO_ROOT/scripts/chdb-server/chdb_http_server.py"
LF_CHDB_REQUIREMENTS="$LF_REPO_ROOT/scripts/chdb-server/requirements.txt"
LF_REDIS_CLUSTER_PORTS=(7001 7002 7003)

# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------

_lf_say() { printf '==> %s\n' "$*"; }
_lf_warn() { printf '==> WARNING: %s\n' "$*" >&2; }
_lf_err() { printf '==> ERROR: %s\n' "$*" >&2; }
_lf_have() { command -v "$1" >/dev/null 2>&1; }

_lf_dirs() { mkdir -p "$LF_DEV_DIR" "$LF_LOG_DIR"; }

# Runs a command as root: directly when we are root, through sudo otherwise.
_lf_root() {
    if ((EUID == 0)); then
        "$@"
    elif _lf_have sudo; then
        sudo "$@"
    else
        _lf_err "need root (or sudo) to run: $*"
        return 1
    fi
}

# Runs a command as the operating-system user `postgres`, for peer authentication over the local socket.
_lf_as_postgres() {
    if [[ "$(id -un)" == postgres ]]; then
        "$@"
    elif ((EUID == 0)); then
        runuser -u postgres -- "$@"
    elif _lf_have sudo; then
        sudo -u postgres "$@"
    else
        _lf_err "need root (or sudo) to act as the postgres user: $*"
        return 1
    fi
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
_lf_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# _lf_spawn PIDFILE LOGFILE CMD [ARGS...]
# Starts CMD in the background in its own session (so it outlives the caller and is not hit by the
# caller's Ctrl-C), immune to SIGHUP, with output appended to LOGFILE and its pid written to PIDFILE.
_lf_spawn() {
    local pidfile=$1 log=$2
    shift 2
    rm -f "$pidfile"
    # shellcheck disable=SC2016 # $$ and $1 expand in the child shell, on purpose.
    setsid -f bash -c 'echo $$ >"$1"; shift; exec nohup "$@"' _ "$pidfile" "$@" >>"$log" 2>&1 </dev/null
}

# wait_for [--pidfile FILE] NAME TIMEOUT_SECONDS LOGFILE CMD [ARGS...]
# Runs CMD (quietly) every half second until it succeeds. Fails after TIMEOUT_SECONDS, or as soon as the
# process named in --pidfile has exited, printing the tail of LOGFILE.
wait_for() {
    local pidfile=""
    if [[ "${1:-}" == --pidfile ]]; then
        pidfile=$2
        shift 2
    fi
    local name=$1 timeout=$2 log=$3
    shift 3
    local deadline=$((SECONDS + timeout)) pid
    until "$@" >/dev/null 2>&1; do
        if [[ -n "$pidfile" && -s "$pidfile" ]]; then
            pid=$(<"$pidfile")
            if ! kill -0 "$pid" 2>/dev/null; then
                _lf_err "$name: the process exited before it was ready; log: $log"
                _lf_show_log "$log"
                return 1
            fi
        fi
        if ((SECONDS >= deadline)); then
            _lf_err "$name: not ready after ${timeout}s; log: $log"
            _lf_show_log "$log"
            return 1
        fi
        sleep 0.5
    done
}

_lf_show_log() {
    if [[ -r "$1" ]]; then
        printf -- '----- last lines of %s -----\n' "$1" >&2
        tail -n 40 "$1" >&2 || true
        printf -- '-----\n' >&2
    else
        printf '(log %s not readable)\n' "$1" >&2
    fi
}

_lf_dpkg_installed() {
    _lf_have dpkg-query && dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Prints a Python 3 interpreter that can create virtual environments (venv and ensurepip importable).
_lf_find_python() {
    local py
    for py in python3 /usr/bin/python3; do
        if _lf_have "$py" && "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

_lf_apt_updated=0
_lf_apt_install() {
    if ! _lf_have apt-get; then
        _lf_err "packages missing and apt-get is not available; install them by hand: $*"
        return 1
    fi
    if ((_lf_apt_updated == 0)); then
        _lf_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$LF_LOG_DIR/apt.log" 2>&1 || {
            _lf_err "apt-get update failed; log: $LF_LOG_DIR/apt.log"
            _lf_show_log "$LF_LOG_DIR/apt.log"
            return 1
        }
        _lf_apt_updated=1
    fi
    _lf_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        >>"$LF_LOG_DIR/apt.log" 2>&1 || {
        _lf_err "apt-get install $* failed; log: $LF_LOG_DIR/apt.log"
        _lf_show_log "$LF_LOG_DIR/apt.log"
        return 1
    }
}

# ---------------------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------------------

ensure_packages() {
    _lf_dirs
    local missing=() want_cargo=0

    # PostgreSQL: the client tools always; the server only when nothing listens on 5432 already.
    if ! _lf_have psql || ! _lf_have pg_isready; then
        missing+=(postgresql)
    elif ! _lf_port_open 5432 && { ! _lf_have pg_ctlcluster || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }; then
        missing+=(postgresql)
    fi
    _lf_have redis-server || missing+=(redis-server)
    _lf_have redis-cli || missing+=(redis-tools)
    _lf_find_python >/dev/null || missing+=(python3 python3-venv)
    _lf_have curl || missing+=(curl)
    [[ -s /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
    { _lf_dpkg_installed build-essential || { _lf_have cc && _lf_have c++ && _lf_have make; }; } ||
        missing+=(build-essential)
    _lf_have pkg-config || missing+=(pkg-config)

    # Rust: rustup's default location first; Debian's packages are the fallback (and are old).
    if ! _lf_have cargo && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! _lf_have cargo; then
        missing+=(cargo rustc rustfmt rust-clippy)
        want_cargo=1
    fi

    if ((${#missing[@]} == 0)); then
        _lf_say "packages: all present"
        return 0
    fi
    _lf_apt_install "${missing[@]}" || return 1
    _lf_say "packages: installed ${missing[*]}"
    if ((want_cargo)); then
        _lf_warn "cargo came from Debian ($(cargo --version 2>/dev/null || echo unknown version)); it is likely" \
            "too old for this project's dependencies. Install a current stable toolchain with rustup if you can."
    fi
}

# ---------------------------------------------------------------------------------------------------------
# PostgreSQL (127.0.0.1:5432, role postgres without a password, database langfuse)
# ---------------------------------------------------------------------------------------------------------

_lf_pg_tcp_ok() {
    env -u PGPASSWORD PGPASSFILE="$LF_DEV_DIR/no-such-pgpass" PGCONNECT_TIMEOUT=3 \
        psql "postgres://postgres@127.0.0.1:5432/postgres" -w -Atqc 'select 1' >/dev/null 2>&1
}

_lf_pg_psql_tcp() {
    env -u PGPASSWORD PGPASSFILE="$LF_DEV_DIR/no-such-pgpass" PGCONNECT_TIMEOUT=3 \
        psql "postgres://postgres@127.0.0.1:5432/postgres" -w -X -Atq -v ON_ERROR_STOP=1 "$@"
}

_lf_pg_psql_local() {
    _lf_as_postgres env -u PGHOST -u PGHOSTADDR -u PGUSER -u PGDATABASE -u PGPASSWORD \
        psql -p 5432 -d postgres -X -Atq -v ON_ERROR_STOP=1 "$@"
}

# Starts (creating it first if needed) the Debian cluster that serves port 5432. Prints its log file.
_lf_pg_start_cluster() {
    local ver name port status _owner _data log found=""
    if ! _lf_have pg_ctlcluster || ! _lf_have pg_lsclusters; then
        _lf_err "postgres: nothing answers on 127.0.0.1:5432 and PostgreSQL is not installed (run ensure_packages)"
        return 1
    fi
    while read -r ver name port status _owner _data log; do
        if [[ "$port" == 5432 ]]; then
            found="$ver $name $status $log"
            break
        fi
    done < <(pg_lsclusters -h 2>/dev/null)

    if [[ -z "$found" ]]; then
        ver=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null |
            awk -F/ '{print $5}' | sort -V | tail -n 1)
        if [[ -z "$ver" ]]; then
            _lf_err "postgres: no PostgreSQL server binaries under /usr/lib/postgresql (run ensure_packages)"
            return 1
        fi
        name=main
        [[ -e "/etc/postgresql/$ver/main" ]] && name=langfuse
        _lf_root pg_createcluster --port 5432 "$ver" "$name" >>"$LF_LOG_DIR/postgres-setup.log" 2>&1 || {
            _lf_err "postgres: pg_createcluster $ver $name failed; log: $LF_LOG_DIR/postgres-setup.log"
            _lf_show_log "$LF_LOG_DIR/postgres-setup.log"
            return 1
        }
        status=down
        log="/var/log/postgresql/postgresql-$ver-$name.log"
    else
        read -r ver name status log <<<"$found"
    fi

    if [[ "$status" != online ]]; then
        local skip=()
        grep -q 'skip-systemctl-redirect' "$(command -v pg_ctlcluster)" 2>/dev/null && skip=(--skip-systemctl-redirect)
        _lf_root pg_ctlcluster "${skip[@]}" "$ver" "$name" start >>"$LF_LOG_DIR/postgres-setup.log" 2>&1 || {
            _lf_err "postgres: pg_ctlcluster $ver $name start failed; logs: $LF_LOG_DIR/postgres-setup.log, $log"
            _lf_show_log "$LF_LOG_DIR/postgres-setup.log"
            _lf_show_log "$log"
            return 1
        }
    fi
    printf '%s\n' "$log"
}

# Lets role postgres connect over TCP from localhost without a password (dev installs only): prepends
# trust lines for 127.0.0.1/32 and ::1/128 to pg_hba.conf (first match wins) and reloads.
_lf_pg_trust_localhost() {
    local hba
    hba=$(_lf_pg_psql_local -c 'show hba_file' 2>>"$LF_LOG_DIR/postgres-setup.log") || {
        _lf_err "postgres: role postgres cannot connect to 127.0.0.1:5432 without a password, and the" \
            "server cannot be reconfigured over the local socket. Allow it in pg_hba.conf (trust for" \
            "127.0.0.1/32), or point the scripts at another server. Log: $LF_LOG_DIR/postgres-setup.log"
        return 1
    }
    if ! _lf_as_postgres grep -q '^# langfuse-rs dev: trust localhost' "$hba"; then
        # shellcheck disable=SC2016 # expanded by the inner shell
        _lf_as_postgres bash -c '
            set -e
            tmp=$(mktemp)
            {
                echo "# langfuse-rs dev: trust localhost (added by scripts/services.sh; development only)"
                echo "host    all    all    127.0.0.1/32    trust"
                echo "host    all    all    ::1/128         trust"
                cat "$1"
            } >"$tmp"
            cat "$tmp" >"$1"
            rm -f "$tmp"
        ' _ "$hba" || {
            _lf_err "postgres: could not edit $hba"
            return 1
        }
    fi
    _lf_pg_psql_local -c 'select pg_reload_conf()' >/dev/null || return 1
    wait_for postgres 10 "$LF_LOG_DIR/postgres-setup.log" _lf_pg_tcp_ok
}

ensure_postgres() {
    _lf_dirs
    local how=reused log="$LF_LOG_DIR/postgres-setup.log" server_log
    if ! _lf_have pg_isready || ! _lf_have psql; then
        _lf_err "postgres: pg_isready/psql not found (run ensure_packages)"
        return 1
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432 -t 3; then
        if _lf_port_open 5432; then
            _lf_err "postgres: port 5432 is taken by something that is not a ready PostgreSQL server"
            return 1
        fi
        server_log=$(_lf_pg_start_cluster) || return 1
        wait_for postgres 60 "$server_log" pg_isready -q -h 127.0.0.1 -p 5432 -t 2 || return 1
        how=started
    fi
    if ! _lf_pg_tcp_ok; then
        _lf_pg_trust_localhost || return 1
        how="$how, trust for localhost added to pg_hba.conf"
    fi
    if [[ "$(_lf_pg_psql_tcp -c "select 1 from pg_database where datname = 'langfuse'")" != 1 ]]; then
        # A concurrent run may have created it meanwhile: check again before failing.
        _lf_pg_psql_tcp -c 'create database langfuse' >>"$log" 2>&1 ||
            [[ "$(_lf_pg_psql_tcp -c "select 1 from pg_database where datname = 'langfuse'")" == 1 ]] || {
            _lf_err "postgres: could not create database langfuse; log: $log"
            return 1
        }
        how="$how, database langfuse created"
    fi
    export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/langfuse}"
    _lf_say "postgres: running on 127.0.0.1:5432 ($how)"
}

# ---------------------------------------------------------------------------------------------------------
# Redis (127.0.0.1:6379)
# ---------------------------------------------------------------------------------------------------------

_lf_redis_pong() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

ensure_redis() {
    _lf_dirs
    local how=reused log="$LF_LOG_DIR/redis.log"
    if ! _lf_have redis-server || ! _lf_have redis-cli; then
        _lf_err "redis: redis-server/redis-cli not found (run ensure_packages)"
        return 1
    fi
    if ! _lf_redis_pong 6379; then
        if _lf_port_open 6379; then
            _lf_err "redis: port 6379 is taken by something that does not answer PING (a password-protected Redis?)"
            return 1
        fi
        mkdir -p "$LF_DEV_DIR/redis"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
            --dir "$LF_DEV_DIR/redis" --pidfile "$LF_DEV_DIR/redis/redis.pid" --logfile "$log" || {
            _lf_err "redis: redis-server failed to start; log: $log"
            _lf_show_log "$log"
            return 1
        }
        wait_for redis 20 "$log" _lf_redis_pong 6379 || return 1
        how=started
    fi
    export REDIS_CONNECTION_STRING="${REDIS_CONNECTION_STRING:-redis://127.0.0.1:6379}"
    _lf_say "redis: running on 127.0.0.1:6379 ($how)"
}

# ---------------------------------------------------------------------------------------------------------
# Redis Cluster (3 masters on 127.0.0.1:7001-7003, no replicas)
# ---------------------------------------------------------------------------------------------------------

# True when every node reports a healthy cluster of exactly our three nodes with all slots assigned.
_lf_redis_cluster_ok() {
    local p info ids first=""
    for p in "${LF_REDIS_CLUSTER_PORTS[@]}"; do
        info=$(redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | tr -d '\r') || return 1
        grep -qx 'cluster_state:ok' <<<"$info" || return 1
        grep -qx 'cluster_slots_assigned:16384' <<<"$info" || return 1
        grep -qx "cluster_known_nodes:${#LF_REDIS_CLUSTER_PORTS[@]}" <<<"$info" || return 1
        ids=$(redis-cli -h 127.0.0.1 -p "$p" cluster nodes 2>/dev/null | awk '{print $1}' | sort | tr '\n' ' ')
        [[ -n "$ids" ]] || return 1
        if [[ -z "$first" ]]; then
            first=$ids
        elif [[ "$ids" != "$first" ]]; then
            return 1
        fi
    done
}

_lf_redis_cluster_has_slots() {
    local p
    for p in "${LF_REDIS_CLUSTER_PORTS[@]}"; do
        if redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | tr -d '\r' |
            grep -q '^cluster_slots_assigned:[1-9]'; then
            return 0
        fi
    done
    return 1
}

ensure_redis_cluster() {
    _lf_dirs
    local how=reused p dir log addrs=() create_log="$LF_LOG_DIR/redis-cluster-create.log"
    if ! _lf_have redis-server || ! _lf_have redis-cli; then
        _lf_err "redis-cluster: redis-server/redis-cli not found (run ensure_packages)"
        return 1
    fi
    for p in "${LF_REDIS_CLUSTER_PORTS[@]}"; do
        addrs+=("127.0.0.1:$p")
        dir="$LF_DEV_DIR/redis-cluster/$p"
        log="$LF_LOG_DIR/redis-cluster-$p.log"
        if _lf_redis_pong "$p"; then
            if ! redis-cli -h 127.0.0.1 -p "$p" info cluster 2>/dev/null | tr -d '\r' | grep -qx 'cluster_enabled:1'; then
                _lf_err "redis-cluster: a Redis on port $p runs without cluster mode; stop it or free the port"
                return 1
            fi
            continue
        fi
        if _lf_port_open "$p"; then
            _lf_err "redis-cluster: port $p is taken by something that does not answer PING"
            return 1
        fi
        mkdir -p "$dir"
        redis-server --daemonize yes --bind 127.0.0.1 --port "$p" \
            --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000 \
            --save "" --appendonly no --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$log" || {
            _lf_err "redis-cluster: redis-server on port $p failed to start; log: $log"
            _lf_show_log "$log"
            return 1
        }
        wait_for "redis-cluster node $p" 20 "$log" _lf_redis_pong "$p" || return 1
        how=started
    done

    # Restarted nodes that remember a cluster (nodes.conf) need a moment to find each other again.
    if [[ "$how" == started ]] && _lf_redis_cluster_has_slots; then
        wait_for redis-cluster 15 "$LF_LOG_DIR/redis-cluster-${LF_REDIS_CLUSTER_PORTS[0]}.log" \
            _lf_redis_cluster_ok 2>/dev/null || true
    fi

    if ! _lf_redis_cluster_ok; then
        # Broken, partial or never created: wipe the nodes and create the cluster from scratch.
        for p in "${LF_REDIS_CLUSTER_PORTS[@]}"; do
            {
                redis-cli -h 127.0.0.1 -p "$p" flushall || true
                redis-cli -h 127.0.0.1 -p "$p" cluster reset hard || true
            } >>"$create_log" 2>&1
        done
        redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >>"$create_log" 2>&1 || {
            _lf_err "redis-cluster: redis-cli --cluster create failed; log: $create_log"
            _lf_show_log "$create_log"
            return 1
        }
        wait_for redis-cluster 30 "$create_log" _lf_redis_cluster_ok || return 1
        how=created
    fi
    export LANGFUSE_TEST_REDIS_CLUSTER_NODES
    LANGFUSE_TEST_REDIS_CLUSTER_NODES=$(
        IFS=,
        echo "${addrs[*]}"
    )
    _lf_say "redis-cluster: running on 127.0.0.1:${LF_REDIS_CLUSTER_PORTS[0]}-${LF_REDIS_CLUSTER_PORTS[-1]} ($how)"
}

# ---------------------------------------------------------------------------------------------------------
# Python virtual environment (.dev/venv): chDB stand-in requirements, moto[server], pytest
# ---------------------------------------------------------------------------------------------------------

ensure_python_venv() {
    _lf_dirs
    local log="$LF_LOG_DIR/venv.log" stamp="$LF_VENV/.langfuse-rs-stamp" extras=("moto[server]" pytest)
    local req_args=() note="" hash py
    if [[ -f "$LF_CHDB_REQUIREMENTS" ]]; then
        req_args=(-r "$LF_CHDB_REQUIREMENTS")
    else
        note="; ${LF_CHDB_REQUIREMENTS#"$LF_REPO_ROOT"/} not found, installed moto and pytest only"
    fi
    hash=$({
        cat "$LF_CHDB_REQUIREMENTS" 2>/dev/null || echo "no requirements file"
        printf '%s\n' "${extras[@]}"
    } | sha256sum | cut -d' ' -f1)

    # A venv's scripts name its absolute path: one left behind by a moved checkout is rebuilt.
    if [[ -f "$LF_VENV/bin/pip" && "$(head -n 1 "$LF_VENV/bin/pip")" != "#!$LF_VENV/bin/"* ]]; then
        rm -rf "$LF_VENV"
    fi
    if [[ -x "$LF_VENV/bin/python" && -f "$stamp" && "$(<"$stamp")" == "$hash" ]]; then
        export LANGFUSE_TEST_PYTHON="$LF_VENV/bin/python"
        _lf_say "venv: $LF_VENV up to date (reused)"
        return 0
    fi

    if ! "$LF_VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        py=$(_lf_find_python) || {
            _lf_err "venv: no Python 3 with the venv module found (run ensure_packages)"
            return 1
        }
        rm -rf "$LF_VENV"
        "$py" -m venv "$LF_VENV" >>"$log" 2>&1 || {
            _lf_err "venv: $py -m venv $LF_VENV failed; log: $log"
            _lf_show_log "$log"
            return 1
        }
    fi
    rm -f "$stamp"
    "$LF_VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
        "${req_args[@]}" "${extras[@]}" >>"$log" 2>&1 || {
        _lf_err "venv: pip install failed; log: $log"
        _lf_show_log "$log"
        return 1
    }
    printf '%s\n' "$hash" >"$stamp"
    export LANGFUSE_TEST_PYTHON="$LF_VENV/bin/python"
    _lf_say "venv: $LF_VENV installed$note"
}

# ---------------------------------------------------------------------------------------------------------
# The official Python SDKs, each in its own venv (2.x, 4.x and 5.x cannot share one), for compatibility tests
# ---------------------------------------------------------------------------------------------------------

# _lf_requirements_venv DIR REQUIREMENTS: a venv at DIR with REQUIREMENTS installed, rebuilt only when the
# file changes. Prints the venv's python.
_lf_requirements_venv() {
    local dir=$1 requirements=$2 log="$LF_LOG_DIR/$(basename "$1").log" stamp="$1/.langfuse-rs-stamp"
    local hash py
    hash=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [[ -f "$dir/bin/pip" && "$(head -n 1 "$dir/bin/pip")" != "#!$dir/bin/"* ]]; then
        rm -rf "$dir"
    fi
    if [[ -x "$dir/bin/python" && -f "$stamp" && "$(<"$stamp")" == "$hash" ]]; then
        echo "$dir/bin/python"
        return 0
    fi
    py=$(_lf_find_python) || {
        _lf_err "sdk venv: no Python 3 with the venv module found (run ensure_packages)"
        return 1
    }
    rm -rf "$dir"
    if ! { "$py" -m venv "$dir" && "$dir/bin/python" -m pip install --disable-pip-version-check \
        --no-input -r "$requirements"; } >>"$log" 2>&1; then
        _lf_err "sdk venv: installing $requirements failed; log: $log"
        _lf_show_log "$log" >&2
        return 1
    fi
    printf '%s\n' "$hash" >"$stamp"
    echo "$dir/bin/python"
}

ensure_sdk_venvs() {
    _lf_dirs
    LANGFUSE_TEST_PYTHON_SDK_V2=$(_lf_requirements_venv "$LF_DEV_DIR/sdk-python-v2" \
        "$LF_REPO_ROOT/tests/sdk/requirements-python-v2.txt") || return 1
    LANGFUSE_TEST_PYTHON_SDK_V4=$(_lf_requirements_venv "$LF_DEV_DIR/sdk-python-v4" \
        "$LF_REPO_ROOT/tests/sdk/requirements-python-v4.txt") || return 1
    LANGFUSE_TEST_PYTHON_SDK_V5=$(_lf_requirements_venv "$LF_DEV_DIR/sdk-python-v5" \
        "$LF_REPO_ROOT/tests/sdk/requirements-python-v5.txt") || return 1
    LANGFUSE_TEST_PYTHON_OTEL=$(_lf_requirements_venv "$LF_DEV_DIR/sdk-python-otel" \
        "$LF_REPO_ROOT/tests/sdk/requirements-otel.txt") || return 1
    export LANGFUSE_TEST_PYTHON_SDK_V2 LANGFUSE_TEST_PYTHON_SDK_V4 LANGFUSE_TEST_PYTHON_SDK_V5 \
        LANGFUSE_TEST_PYTHON_OTEL
    _lf_say "sdk venvs: Python SDK 2.x, 4.x and 5.x and a plain OpenTelemetry exporter ready under $LF_DEV_DIR"
}

# The official JS SDKs (tests/sdk/package.json), installed with npm into .dev/sdk-js.
ensure_js_sdks() {
    _lf_dirs
    local dir="$LF_DEV_DIR/sdk-js" manifest="$LF_REPO_ROOT/tests/sdk/package.json"
    local log="$LF_LOG_DIR/sdk-js.log" stamp="$LF_DEV_DIR/sdk-js/.langfuse-rs-stamp" hash
    if ! _lf_have npm; then
        _lf_apt_install nodejs npm || return 1
    fi
    hash=$(sha256sum "$manifest" | cut -d' ' -f1)
    if [[ ! -f "$stamp" || "$(<"$stamp")" != "$hash" ]]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        cp "$manifest" "$dir/package.json"
        if ! (cd "$dir" && npm install --no-audit --no-fund) >>"$log" 2>&1; then
            _lf_err "sdk-js: npm install failed; log: $log"
            _lf_show_log "$log" >&2
            return 1
        fi
        printf '%s\n' "$hash" >"$stamp"
    fi
    export LANGFUSE_TEST_NODE_MODULES="$dir/node_modules"
    _lf_say "sdk-js: JS SDKs ready under $dir"
}

# The stand-in and moto run from the venv; create it when it is missing, quietly reuse it otherwise.
_lf_need_venv_tool() {
    if [[ -x "$LF_VENV/bin/$1" ]]; then
        export LANGFUSE_TEST_PYTHON="${LANGFUSE_TEST_PYTHON:-$LF_VENV/bin/python}"
    else
        ensure_python_venv || return 1
    fi
}

# ---------------------------------------------------------------------------------------------------------
# ClickHouse HTTP interface on 127.0.0.1:8123 (a real server if one runs, else the chDB stand-in)
# ---------------------------------------------------------------------------------------------------------

_lf_clickhouse_ping() {
    curl -sf --max-time 2 http://127.0.0.1:8123/ping >/dev/null 2>&1
}

ensure_clickhouse() {
    _lf_dirs
    local how=reused log="$LF_LOG_DIR/clickhouse.log" pidfile="$LF_DEV_DIR/clickhouse.pid"
    export LANGFUSE_TEST_CHDB_SERVER="$LF_CHDB_SERVER"
    if ! _lf_clickhouse_ping; then
        if _lf_port_open 8123; then
            _lf_err "clickhouse: port 8123 is taken by something that does not answer GET /ping"
            return 1
        fi
        if [[ ! -f "$LF_CHDB_SERVER" ]]; then
            _lf_err "clickhouse: nothing answers on 127.0.0.1:8123 and $LF_CHDB_SERVER does not exist"
            return 1
        fi
        _lf_need_venv_tool python || return 1
        mkdir -p "$LF_DEV_DIR/clickhouse"
        printf '\n=== %s: starting chdb_http_server.py ===\n' "$(date -Is)" >>"$log"
        PYTHONUNBUFFERED=1 _lf_spawn "$pidfile" "$log" "$LF_VENV/bin/python" "$LF_CHDB_SERVER" \
            --host 127.0.0.1 --port 8123 --data-dir "$LF_DEV_DIR/clickhouse" || {
            _lf_err "clickhouse: could not start the chDB stand-in; log: $log"
            return 1
        }
        wait_for --pidfile "$pidfile" clickhouse 60 "$log" _lf_clickhouse_ping || return 1
        how="started chDB stand-in, pid $(<"$pidfile")"
    fi
    export CLICKHOUSE_URL="${CLICKHOUSE_URL:-http://127.0.0.1:8123}"
    export CLICKHOUSE_USER="${CLICKHOUSE_USER:-default}"
    export CLICKHOUSE_PASSWORD="${CLICKHOUSE_PASSWORD-}"
    _lf_say "clickhouse: running on 127.0.0.1:8123 ($how)"
}

# ---------------------------------------------------------------------------------------------------------
# S3 (moto server on 127.0.0.1:5055)
# ---------------------------------------------------------------------------------------------------------

_lf_s3_answers() {
    curl -s -o /dev/null --max-time 2 http://127.0.0.1:5055/ >/dev/null 2>&1
}

ensure_s3() {
    _lf_dirs
    local how=reused log="$LF_LOG_DIR/s3.log" pidfile="$LF_DEV_DIR/s3.pid"
    if ! _lf_s3_answers; then
        if _lf_port_open 5055; then
            _lf_err "s3: port 5055 is taken by something that does not answer HTTP"
            return 1
        fi
        _lf_need_venv_tool moto_server || return 1
        printf '\n=== %s: starting moto_server ===\n' "$(date -Is)" >>"$log"
        _lf_spawn "$pidfile" "$log" "$LF_VENV/bin/moto_server" -H 127.0.0.1 -p 5055 || {
            _lf_err "s3: could not start moto_server; log: $log"
            return 1
        }
        wait_for --pidfile "$pidfile" s3 30 "$log" _lf_s3_answers || return 1
        how="started moto, pid $(<"$pidfile")"
    fi
    export LANGFUSE_TEST_S3_ENDPOINT="${LANGFUSE_TEST_S3_ENDPOINT:-http://127.0.0.1:5055}"
    _lf_say "s3: running on 127.0.0.1:5055 ($how)"
}

# ---------------------------------------------------------------------------------------------------------
# A browser for the web UI's tests: Debian's chromium and chromium-driver, driven over WebDriver
# ---------------------------------------------------------------------------------------------------------

# The tests start their own chromedriver (on a free port) and headless chromium; this only installs them.
# Debian's packages, not a browser build downloaded by a test tool: the machine reaches package registries
# only, and the distribution's chromium gets its security updates with the rest of the system.
ensure_browser() {
    _lf_dirs
    local missing=() chromium driver
    _lf_have chromium || missing+=(chromium)
    _lf_have chromedriver || missing+=(chromium-driver)
    if ((${#missing[@]} > 0)); then
        # Fonts: without them headless chromium draws every glyph as a box in screenshots.
        _lf_apt_install "${missing[@]}" fonts-dejavu-core || return 1
    fi
    chromium=$(command -v chromium) || { _lf_err "browser: chromium is not on PATH after installing it"; return 1; }
    driver=$(command -v chromedriver) || { _lf_err "browser: chromedriver is not on PATH after installing it"; return 1; }
    export LANGFUSE_TEST_CHROMIUM="${LANGFUSE_TEST_CHROMIUM:-$chromium}"
    export LANGFUSE_TEST_CHROMEDRIVER="${LANGFUSE_TEST_CHROMEDRIVER:-$driver}"
    _lf_say "browser: $("$LANGFUSE_TEST_CHROMIUM" --version 2>/dev/null || echo chromium) with $LANGFUSE_TEST_CHROMEDRIVER"
}

# ---------------------------------------------------------------------------------------------------------
# Stopping: only what these functions started (found through the pid files under .dev/). PostgreSQL and
# servers that were reused are left alone. Useful after editing the chDB stand-in, which is otherwise reused.
# ---------------------------------------------------------------------------------------------------------

stop_services() {
    local pidfile pid stopped=()
    for pidfile in "$LF_DEV_DIR/clickhouse.pid" "$LF_DEV_DIR/s3.pid" "$LF_DEV_DIR/redis/redis.pid" \
        "$LF_DEV_DIR"/redis-cluster/*/redis.pid; do
        [[ -s "$pidfile" ]] || continue
        pid=$(<"$pidfile")
        # A stale pid file may name a pid that now belongs to something else: check the command line.
        if kill -0 "$pid" 2>/dev/null &&
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 'redis-server|moto_server|chdb_http_server'; then
            kill "$pid" && stopped+=("${pidfile#"$LF_DEV_DIR"/}:$pid")
        fi
        rm -f "$pidfile"
    done
    _lf_say "services: stopped ${stopped[*]:-nothing}"
}
