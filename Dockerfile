# syntax=docker/dockerfile:1
#
# One image for every role: `serve` (the default), `work` and `migrate`.
#
#     docker build -t langfuse-rs .
#     docker run --rm langfuse-rs migrate
#     docker run -p 3000:3000 langfuse-rs                  # web
#     docker run -p 3030:3030 langfuse-rs work             # worker; probes on 3030
#
# Building needs BuildKit (the default builder of current Docker): the cargo registry and the target
# directory live in cache mounts, so a source change recompiles only this crate.

FROM rust:1-bookworm AS builder
WORKDIR /build
# Everything the compiler reads: the SQL migrations, config.example.toml (the built-in defaults), the
# web UI's templates and its CSS and script (under src/) are embedded into the binary at compile
# time; tests/ is declared in Cargo.toml as a target.
COPY Cargo.toml Cargo.lock config.example.toml ./
COPY src ./src
COPY sql ./sql
COPY templates ./templates
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/build/target,sharing=locked \
    cargo build --release --locked \
    && install -m 0755 target/release/langfuse-rs /usr/local/bin/langfuse-rs

FROM debian:bookworm-slim
# ca-certificates: TLS to ElastiCache, S3 and ClickHouse (when over TLS) is verified against the system roots.
# curl: for container health checks (`curl -fsS http://127.0.0.1:3030/api/public/health`).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 langfuse \
    && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin langfuse \
    && mkdir -p /data \
    && chown langfuse:langfuse /data
COPY --from=builder /usr/local/bin/langfuse-rs /usr/local/bin/langfuse-rs

# HOSTNAME is the bind address (a container's own HOSTNAME would be its id); 3030 is the probe port
# of `work`. Local state, such as the filesystem blob store when no S3 bucket is set, goes to /data.
ENV HOSTNAME=0.0.0.0 \
    PORT=3000 \
    LANGFUSE_RS__DATA_DIR=/data
WORKDIR /data
EXPOSE 3000 3030
USER langfuse
ENTRYPOINT ["langfuse-rs"]
CMD ["serve"]
