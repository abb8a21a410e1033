#!/usr/bin/env bash
# Runs langfuse-rs locally with everything it needs, from a fresh Debian/Ubuntu machine or a prepared one.
#
#     ./scripts/quickstart.sh                       # web + worker on http://127.0.0.1:3000
#     ./scripts/quickstart.sh --config dev.toml     # arguments are passed as global options to langfuse-rs
#
# Installs missing packages, starts PostgreSQL, Redis and a ClickHouse HTTP endpoint (reusing servers already
# running on their standard ports), builds the release binary, applies migrations and then replaces itself
# with `langfuse-rs serve --with-worker`. Safe to re-run. Development defaults below apply only to variables
# that are not set already, so any of them can be overridden from the environment.
set -euo pipefail

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
cd "$LF_REPO_ROOT"

ensure_packages
ensure_postgres
ensure_redis
ensure_python_venv
ensure_clickhouse

_lf_say "cargo build --release"
cargo build --release

export LANGFUSE_INIT_ORG_ID="${LANGFUSE_INIT_ORG_ID:-dev-org}"
export LANGFUSE_INIT_ORG_NAME="${LANGFUSE_INIT_ORG_NAME:-Dev Organization}"
export LANGFUSE_INIT_PROJECT_ID="${LANGFUSE_INIT_PROJECT_ID:-dev-project}"
export LANGFUSE_INIT_PROJECT_NAME="${LANGFUSE_INIT_PROJECT_NAME:-Dev Project}"
export LANGFUSE_INIT_PROJECT_PUBLIC_KEY="${LANGFUSE_INIT_PROJECT_PUBLIC_KEY:-pk-lf-dev}"
export LANGFUSE_INIT_PROJECT_SECRET_KEY="${LANGFUSE_INIT_PROJECT_SECRET_KEY:-sk-lf-dev}"
# The first person, an owner of the organization above, to sign in to the web UI with.
export LANGFUSE_INIT_USER_EMAIL="${LANGFUSE_INIT_USER_EMAIL:-dev@example.com}"
export LANGFUSE_INIT_USER_NAME="${LANGFUSE_INIT_USER_NAME:-Dev User}"
export LANGFUSE_INIT_USER_PASSWORD="${LANGFUSE_INIT_USER_PASSWORD:-dev-password}"
export SALT="${SALT:-dev-salt-change-me}"
export PORT="${PORT:-3000}"
# Bash always sets HOSTNAME to the machine's name, so "unset" cannot be told apart from that value: treat
# the machine's own name as unset and listen on loopback. Any other value is a deliberate choice and is kept.
if [[ -z "${HOSTNAME:-}" || "$HOSTNAME" == "$(uname -n)" ]]; then
    HOSTNAME=127.0.0.1
fi
export HOSTNAME
# Local state stays under .dev/; blobs go to the local filesystem unless an S3 bucket is configured.
export LANGFUSE_RS__DATA_DIR="${LANGFUSE_RS__DATA_DIR:-$LF_DEV_DIR/data}"
export LANGFUSE_RS__BLOB__LOCAL_DIR="${LANGFUSE_RS__BLOB__LOCAL_DIR:-$LF_DEV_DIR/blob}"
mkdir -p "$LANGFUSE_RS__DATA_DIR" "$LANGFUSE_RS__BLOB__LOCAL_DIR"

bin="$LF_REPO_ROOT/target/release/langfuse-rs"
_lf_say "langfuse-rs migrate"
"$bin" "$@" migrate

# The address to print: a wildcard bind is reached through loopback.
case "$HOSTNAME" in
0.0.0.0 | :: | "[::]") url_host=127.0.0.1 ;;
\[*) url_host=$HOSTNAME ;;
*:*) url_host="[$HOSTNAME]" ;;
*) url_host=$HOSTNAME ;;
esac
url="http://$url_host:$PORT"
cat <<EOF
==> langfuse-rs: serving on $url (web + worker); Ctrl-C stops it, the services keep running
    sign in: $url/auth/sign-in as $LANGFUSE_INIT_USER_EMAIL (the password is LANGFUSE_INIT_USER_PASSWORD,
             "dev-password" unless you set it; an account that already existed keeps its own)
    try: curl -u $LANGFUSE_INIT_PROJECT_PUBLIC_KEY:$LANGFUSE_INIT_PROJECT_SECRET_KEY $url/api/public/projects
EOF
exec "$bin" "$@" serve --with-worker
