# syntax=docker/dockerfile:1
# slant: the gRPC scoring service, with the default model baked in.
#
#   docker build -t slant:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9090:9090 slant:0.1.0
#
# Flags go after the image name and replace CMD's defaults, e.g.
#   docker run --rm -p 50051:50051 slant:0.1.0 --addr 0.0.0.0:50051 --model /models/default.slant --max-batch 256
# Every flag also has an environment variable (SLANT_MAX_BATCH, ...; see
# `slant serve --help`).

# --- build: the release binary (protoc comes from a vendored crate) ---
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin slant \
 && cp target/release/slant /usr/local/bin/slant

# --- grpc_health_probe for the HEALTHCHECK, built from its Go module ---
# (Kubernetes does not need it: deploy/ uses the kubelet's native gRPC
# probes. It serves `docker run` and Compose.)
FROM golang:1-bookworm AS probe
RUN CGO_ENABLED=0 go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.62

# --- runtime ---
# debian-slim rather than distroless: the Indexed Job in deploy/ shards its
# corpus with sh and awk in this same image.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin slant
COPY --from=build /usr/local/bin/slant /usr/local/bin/slant
COPY --from=probe /go/bin/grpc-health-probe /usr/local/bin/grpc_health_probe
COPY models/default.slant /models/default.slant
USER 10001:10001
# 50051: gRPC (slant.v1.Scorer, grpc.health.v1.Health, reflection);
# 9090: Prometheus metrics at /metrics.
EXPOSE 50051 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["grpc_health_probe", "-addr=127.0.0.1:50051"]
# SIGTERM drains calls in flight (up to --drain-timeout) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["slant", "serve"]
CMD ["--addr", "0.0.0.0:50051", "--model", "/models/default.slant", "--metrics-addr", "0.0.0.0:9090"]
