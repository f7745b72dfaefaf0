# syntax=docker/dockerfile:1
# teleport-mattermost container image: one fully static binary on distroless/static, non-root.
#
#   docker build -t teleport-mattermost:dev .
#   docker run --rm -p 8081:8081 \
#     -v "$PWD/teleport-mattermost.toml:/etc/teleport-mattermost.toml:ro" \
#     -v "$PWD/identity:/var/lib/teleport/plugins/mattermost:ro" teleport-mattermost:dev
#
# No Docker engine runs where this file was written and tested, so `docker build` itself has
# never run on it. Instead CI (.ci/static-binary.sh) runs this file's build stage with
# .ci/dockerfile-emulate.py: the context filtered by .dockerignore, each COPY (keeping file
# times, as Docker does) and each RUN in WORKDIR with the stage's ENV, on the same Rust and
# Debian versions as the build image, with the dev profile for speed. It then proves the binary
# that the runtime stage copies is static and that ENTRYPOINT + CMD start it as USER, answer
# /healthz on the EXPOSEd port, survive SIGHUP and stop cleanly, in an empty root file system
# holding only that binary and a CA bundle. Not proven: pulling the base images, layer caching,
# and the release profile (run `PROFILE=release .ci/static-binary.sh` for that).
# RUN steps use paths relative to WORKDIR only, so the emulation can follow them.
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz (see the Helm chart).

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never PROFILE=release

# Dependencies first. The workspace's manifests and build scripts with stub sources: this layer
# compiles every dependency for the static target (and the generated protobuf crate, whose
# sources are the repository's proto/ and change rarely) and stays cached until a manifest,
# Cargo.lock, a build script or proto/ changes. The stubs are one empty library per library
# crate (service, sim) and an empty main for the binary package; tests/ is not copied, so the
# binary package's [[test]] target is never built here.
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY crates/proto crates/proto
COPY crates/service/Cargo.toml crates/service/build.rs crates/service/
COPY crates/sim/Cargo.toml crates/sim/
COPY .ci/static-binary.sh .ci/static-binary.sh
RUN mkdir -p src crates/service/src crates/sim/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch crates/service/src/lib.rs crates/sim/src/lib.rs \
    && .ci/static-binary.sh build \
    && rm -rf src crates/service/src crates/sim/src

# Then the sources. COPY keeps the files' own modification times, which may be older than the
# stub build: touch the stubbed crates' sources so cargo rebuilds them (the proto crate was
# built from its real sources above and stays as it is).
COPY . .
RUN find src crates/service/src crates/sim/src -type f -exec touch {} + \
    && .ci/static-binary.sh build out/teleport-mattermost \
    && out/teleport-mattermost version

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="teleport-mattermost" \
      org.opencontainers.image.description="Teleport Access Requests in Mattermost: posts, live status, and in-chat review decided by Teleport RBAC" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
# distroless/static brings /etc/ssl/certs/ca-certificates.crt (Mattermost over HTTPS is checked
# against it), /etc/passwd with user nonroot (65532), /etc/nsswitch.conf and tzdata.
ENV PATH=/usr/local/bin:/usr/bin:/bin
COPY --from=build /src/out/teleport-mattermost /usr/local/bin/teleport-mattermost
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["teleport-mattermost"]
CMD ["start", "--config", "/etc/teleport-mattermost.toml"]
