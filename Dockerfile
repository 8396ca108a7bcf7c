# syntax=docker/dockerfile:1
#
# tlsboot: the CSR approver daemon (`tlsboot controller`) and its CLI, one binary.
#
#   docker build -t REGISTRY/tlsboot:0.1.0 .
#   cd manifests && kustomize edit set image tlsboot=REGISTRY/tlsboot:0.1.0
#
# Stage 1 builds the release binary against glibc; stage 2 ships it alone on
# distroless "cc" (glibc, libgcc, CA certificates; no shell, no package manager),
# running as the image's non-root user 65532. The Deployment's securityContext
# (runAsNonRoot, runAsUser 65532, read-only root FS) matches this image: the binary
# writes nothing to disk and logs to stderr.

ARG RUST_VERSION=1.95
# Builder and runtime are both Debian 12 (bookworm): the binary's glibc symbol
# versions must not be newer than the runtime's glibc.
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# The whole workspace is needed: Cargo resolves every member (tests/harness) and
# checks declared targets (benches/) even when building one binary.
COPY . .
# --locked: exactly the reviewed Cargo.lock. Cache mounts keep the registry and the
# target dir between builds (BuildKit); the binary is copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --package tlsboot --bin tlsboot \
 && install -D -m 0755 target/release/tlsboot /out/tlsboot

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tlsboot /usr/local/bin/tlsboot
# 65532:65532 is distroless's "nonroot"; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tlsboot"]
CMD ["controller"]
