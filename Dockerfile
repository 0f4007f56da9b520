# corral's container image. Build stage: Debian 12 with tools/install-deps.sh (the same packages `make` uses) and the
# Makefile; runtime stage: bookworm-slim with only the shared libraries build/corral links (tests/helm/run.sh checks
# that every library `ldd build/corral` shows comes from a package installed below) and a non-root user, uid 10001,
# the chart's securityContext.runAsUser. The chart mounts /etc/corral/corral.yaml from a ConfigMap and a writable
# /tmp (libh2o spills large socket buffers there), so the root file system can be read-only.
#
#   docker build -t corral:0.1.0 .
#   docker run --rm -e CORRAL_ADMIN_TOKEN=secret --network host corral:0.1.0    # conf/corral.yaml: API on :8080

FROM debian:bookworm AS build
WORKDIR /src
COPY tools/install-deps.sh tools/install-deps.sh
RUN tools/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY Makefile ./
COPY include include
COPY sidecar sidecar
COPY tests/fuzz/fuzz.mk tests/fuzz/fuzz.mk
RUN make -j"$(nproc)" all && ./build/corral --version

FROM debian:bookworm-slim
# one package per shared library of build/corral (libc6, libstdc++6 and libgcc-s1 are in the base image already;
# they are listed so the list is the whole dependency set)
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libc6 \
      libgcc-s1 \
      libstdc++6 \
      libh2o-evloop0.13 \
      libwslay1 \
      libmemcached11 \
      libhashkit2 \
      libsasl2-2 \
      zlib1g \
      libbrotli1 \
      libyaml-0-2 \
      libssl3 \
      libjansson4 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 corral \
 && useradd --system --uid 10001 --gid corral --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin corral
COPY --from=build /src/build/corral /usr/local/bin/corral
COPY conf/corral.yaml /etc/corral/corral.yaml
USER 10001:10001
EXPOSE 8081 9091
ENTRYPOINT ["/usr/local/bin/corral"]
CMD ["-c", "/etc/corral/corral.yaml"]
