# syntax=docker/dockerfile:1
# slant: the scoring service (gRPC, gRPC-Web and JSON on one port), with
# the default model baked in as a model directory: /models/default/1.slant.
#
#   docker build -t slant:0.1.0 .
#   docker run --rm -p 50051:50051 slant:0.1.0
#
# Other models and versions: mount a directory of <name>/<version>.slant
# over /models (read-only is enough); --watch loads files as they come,
# go or change.
#   docker run --rm -p 50051:50051 -v "$PWD/models-dir:/models:ro" slant:0.1.0
# API keys: mount the key file's directory (not the file: an edit that
# replaces it would not reach the container) and name it in a variable.
#   docker run --rm -p 50051:50051 -v "$PWD/keys:/etc/slant/keys:ro" \
#     -e SLANT_API_KEYS=/etc/slant/keys/keys.txt slant:0.1.0
# Every flag has such a variable (SLANT_MAX_BATCH, ...; see `slant serve
# --help`); they keep CMD's defaults, while flags after the image name
# replace them.

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
# (Kubernetes does not need it: deploy/ probes /healthz over HTTP. It
# serves `docker run` and Compose.)
FROM golang:1-bookworm AS probe
RUN CGO_ENABLED=0 go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.62

# --- runtime ---
# debian-slim rather than distroless: the Indexed Job in deploy/ shards its
# corpus with sh and awk in this same image.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin slant
COPY --from=build /usr/local/bin/slant /usr/local/bin/slant
COPY --from=probe /go/bin/grpc-health-probe /usr/local/bin/grpc_health_probe
COPY models/default.slant /models/default/1.slant
USER 10001:10001
# One port: gRPC (slant.v1.Scorer, grpc.health.v1.Health, reflection),
# gRPC-Web, the JSON API, /healthz, /metrics (Prometheus) and the page.
EXPOSE 50051
# grpc.health.v1.Health/Check for "": SERVING while a model is loaded,
# NOT_SERVING with none (an empty /models) or while draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["grpc_health_probe", "-addr=127.0.0.1:50051"]
# SIGTERM drains calls in flight (up to --drain-timeout) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["slant", "serve"]
CMD ["--addr", "0.0.0.0:50051", "--model-dir", "/models", "--watch"]
