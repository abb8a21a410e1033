#!/usr/bin/env bash
# The project's full check, as CI runs it: starts every service the tests use, then runs
# rustfmt, clippy, the Rust tests and the chDB stand-in's own Python tests, stopping at the first failure.
#
#     ./scripts/test.sh                          # everything
#     ./scripts/test.sh ingest                   # arguments before `--` go to `cargo test` (a name filter here)
#     ./scripts/test.sh ingest -- --nocapture    # arguments after `--` go to the test binaries
#
# Services (reused when already running, otherwise started and left running; state and logs under .dev/):
#   PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379, Redis Cluster 127.0.0.1:7001-7003,
#   ClickHouse HTTP (chDB stand-in) 127.0.0.1:8123, S3 (moto) 127.0.0.1:5055.
# The web UI's browser tests use Debian's chromium and chromium-driver (installed when missing); they
# save screenshots of the pages they visit under target/ui-screenshots/.
set -euo pipefail

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
cd "$LF_REPO_ROOT"

started_at=$SECONDS

ensure_packages
ensure_postgres
ensure_redis
ensure_redis_cluster
ensure_python_venv
ensure_clickhouse
ensure_s3
ensure_sdk_venvs
ensure_js_sdks
ensure_browser

# Langfuse's OpenAPI spec, the contract the read API is checked against: it lives beside the
# checkout (../shared/reference/), or beside the repository this one was cloned from.
find_openapi_spec() {
    local spec=shared/reference/langfuse-openapi.yml origin
    if [[ -n "${LANGFUSE_TEST_OPENAPI_SPEC:-}" ]]; then
        return
    fi
    if [[ -f "$LF_REPO_ROOT/../$spec" ]]; then
        LANGFUSE_TEST_OPENAPI_SPEC="$LF_REPO_ROOT/../$spec"
    elif origin=$(git -C "$LF_REPO_ROOT" remote get-url origin 2>/dev/null) && [[ -f "$origin/../$spec" ]]; then
        LANGFUSE_TEST_OPENAPI_SPEC="$origin/../$spec"
    else
        echo "test.sh: Langfuse's OpenAPI spec not found at ../$spec (beside the checkout or its origin);" \
            "set LANGFUSE_TEST_OPENAPI_SPEC to its path" >&2
        exit 1
    fi
}
find_openapi_spec
export LANGFUSE_TEST_OPENAPI_SPEC

# Tests create (and drop) their own databases through the admin URL.
export LANGFUSE_TEST_DATABASE_URL="${LANGFUSE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export LANGFUSE_TEST_REDIS_URL="${LANGFUSE_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export LANGFUSE_TEST_CLICKHOUSE_URL="${LANGFUSE_TEST_CLICKHOUSE_URL:-http://127.0.0.1:8123}"
# Set by the ensure_* functions above; listed here so this file names every variable the tests read.
export LANGFUSE_TEST_REDIS_CLUSTER_NODES LANGFUSE_TEST_S3_ENDPOINT LANGFUSE_TEST_PYTHON LANGFUSE_TEST_CHDB_SERVER \
    LANGFUSE_TEST_PYTHON_SDK_V2 LANGFUSE_TEST_PYTHON_SDK_V4 LANGFUSE_TEST_PYTHON_SDK_V5 LANGFUSE_TEST_PYTHON_OTEL \
    LANGFUSE_TEST_NODE_MODULES LANGFUSE_TEST_CHROMIUM LANGFUSE_TEST_CHROMEDRIVER

# Each test creates its own PostgreSQL and ClickHouse databases named lfrs_test_<unix seconds>_<uuid>;
# drop the ones runs older than three hours left behind so they do not pile up on a long-lived machine,
# leaving alone those of a run that may be going on beside this one. (Names without a time are from
# older versions of the tests and always dropped.)
_lf_stale_test_database() {
    local name=$1 created
    if [[ "$name" =~ ^lfrs_test_([0-9]{10})_ ]]; then
        created=${BASH_REMATCH[1]}
        ((created < $(date +%s) - 3 * 3600))
    else
        return 0
    fi
}
drop_test_databases() {
    local db
    for db in $(psql "$LANGFUSE_TEST_DATABASE_URL" -Atc \
        "SELECT datname FROM pg_database WHERE datname LIKE 'lfrs\_test\_%'"); do
        _lf_stale_test_database "$db" || continue
        psql "$LANGFUSE_TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null
    done
    for db in $(curl -sf "$LANGFUSE_TEST_CLICKHOUSE_URL/" --data-binary \
        "SELECT name FROM system.databases WHERE name LIKE 'lfrs\\_test\\_%'"); do
        _lf_stale_test_database "$db" || continue
        curl -sf "$LANGFUSE_TEST_CLICKHOUSE_URL/" --data-binary "DROP DATABASE IF EXISTS \`$db\`" >/dev/null
    done
}
drop_test_databases

cargo_args=()
libtest_args=()
after_separator=0
for arg in "$@"; do
    if ((after_separator)); then
        libtest_args+=("$arg")
    elif [[ "$arg" == -- ]]; then
        after_separator=1
    else
        cargo_args+=("$arg")
    fi
done

# pytest exits 5 when it collects no tests; that is not a failure of the code under test.
run_pytest() {
    local rc=0
    "$LANGFUSE_TEST_PYTHON" -m pytest -q scripts/chdb-server || rc=$?
    if ((rc == 5)); then
        _lf_warn "pytest: no tests collected under scripts/chdb-server"
        return 0
    fi
    return "$rc"
}

passed=()
step() {
    local name=$1 rc
    shift
    _lf_say "$name"
    if "$@"; then
        passed+=("$name")
    else
        rc=$?
        _lf_say "test.sh: FAILED at '$name' (exit $rc) after $((SECONDS - started_at))s;" \
            "passed before it: ${passed[*]:-none}"
        exit "$rc"
    fi
}

step "cargo fmt" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --all-targets -- -D warnings
step "cargo test" cargo test --all-targets "${cargo_args[@]}" -- --test-threads=4 "${libtest_args[@]}"
step "pytest scripts/chdb-server" run_pytest

steps=$(printf '%s, ' "${passed[@]}")
_lf_say "test.sh: all steps passed (${steps%, }) in $((SECONDS - started_at))s"
