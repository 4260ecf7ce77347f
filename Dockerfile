# rmt-server image (CPU), Debian 12 throughout: the builder runs the
# project's own scripts/install_deps.sh and the same Release build as
# `make build`; the runtime holds only the shared libraries the binaries
# link, the binaries, and the bundled model.
#
#   docker build -t rmt-serve .
#   docker run --rm -p 50051:50051 rmt-serve
#   docker run --rm -e RMT_MAX_SESSIONS=256 -e RMT_DRAIN_GRACE=60s rmt-serve
#
# Settings come from RMT_* environment variables (deploy/docker-entrypoint.sh
# lists them) or from flags after the image name. The CUDA variant is
# deploy/cuda/Dockerfile. NOTE: this image has not been built in the
# repository's CI (it has no Docker engine); see README "Deploy" for what is
# tested.

FROM debian:12 AS builder
WORKDIR /src
# Dependencies first, so a source change does not reinstall them.
COPY scripts/install_deps.sh scripts/install_deps.sh
RUN bash scripts/install_deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# The configure line of `make build`; only the targets the image ships.
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j "$(nproc)" --target rmt-server rmt-client rmt-loadgen

FROM debian:12-slim
# The runtime halves of the -dev packages the binaries link (readelf -d):
# LibTorch (and OpenBLAS, which makes its BLAS ~16x faster than the
# reference one), gRPC, protobuf, abseil, prometheus-cpp, utf8proc, OpenSSL.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libtorch1.13 libopenblas0-openmp \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 \
      libprometheus-cpp-core1.0 libutf8proc2 libssl3 \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 rmt \
 && useradd --system --uid 10001 --gid rmt --home-dir /var/lib/rmt \
      --create-home --shell /usr/sbin/nologin rmt
COPY --from=builder /src/build/server/rmt-server /src/build/client/rmt-client \
     /src/build/client/rmt-loadgen /usr/local/bin/
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY models/rmt-babi /opt/rmt/models/rmt-babi
ENV RMT_MODEL=/opt/rmt/models/rmt-babi \
    RMT_LISTEN=0.0.0.0:50051 \
    RMT_METRICS_LISTEN=0.0.0.0:9464
# --untrained_dir is relative by default; give it a writable home in case
# RMT_MODEL is emptied on purpose.
ENV RMT_UNTRAINED_DIR=/var/lib/rmt/untrained-model
USER rmt:rmt
WORKDIR /var/lib/rmt
# 50051: gRPC (MemoryQA, grpc.health.v1, reflection). 9464: Prometheus
# /metrics, unauthenticated: publish it only on a private network.
EXPOSE 50051 9464
# grpc.health.v1 over plaintext on 50051: SERVING exits 0; NOT_SERVING (a
# draining replica) or no answer exits 1. With RMT_TLS_CERT set, override it
# (e.g. add --tls_ca) or rely on the orchestrator's own probe.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["rmt-client", "health", "--server=127.0.0.1:50051"]
# SIGTERM drains for --drain_grace (30s by default): give `docker stop` more
# (compose: stop_grace_period; Kubernetes: terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["rmt-server"]
