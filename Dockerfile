# syntax=docker/dockerfile:1
# tagcached in a container: build with Rust, run from a small image with the
# C runtime only, as a non-root user.
#
#   docker build -t tagcached .
#   docker run -p 11311:11311 -e TAGCACHED_MEMORY=512MiB \
#     -v /etc/tagcached/tokens:/run/secrets/tagcached-tokens:ro \
#     -e TAGCACHED_AUTH_TOKEN_FILE=/run/secrets/tagcached-tokens tagcached
#
# Bound to 0.0.0.0, the daemon refuses to start without a token file
# (TAGCACHED_AUTH_TOKEN_FILE) unless TAGCACHED_INSECURE_NO_AUTH=true.
#
# The admin API (/metrics, /purge, ...) is off; TAGCACHED_ADMIN_PORT=9311
# turns it on, on the container's loopback. Reaching it from outside takes
# TAGCACHED_ADMIN_BIND=0.0.0.0 and, then, TAGCACHED_ADMIN_TOKEN_FILE.
#
# Configure it with TAGCACHED_* variables (every flag has one; see
# `tagcached --help`). The build stage runs packaging/build-release, which
# CI runs too (packaging/check), so these steps are tested without Docker.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    packaging/build-release /out

# glibc and libgcc, nothing else: no shell, no package manager. Debian 12,
# as the build stage, so the binaries find the glibc they were linked for.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
USER 65532:65532
# A container serves the network, so the daemon listens on every interface.
ENV TAGCACHED_BIND=0.0.0.0
ENV TAGCACHED_PORT=11311
EXPOSE 11311
# SIGTERM (docker stop) stops it gracefully; SIGHUP re-reads token and
# certificate files.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tagcached"]
