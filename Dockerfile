# syntax=docker/dockerfile:1
#
# nomad-gha-dispatcher: Node 22 LTS service plus a pinned cloudflared, run as a non-root user.
#
#   docker build -t nomad-gha-dispatcher:0.1.0 \
#     --build-arg CLOUDFLARED_DEB_SHA256_AMD64=<sha256> --build-arg CLOUDFLARED_DEB_SHA256_ARM64=<sha256> .
#
# Bumping cloudflared: set CLOUDFLARED_VERSION to a release from
# https://github.com/cloudflare/cloudflared/releases and both checksums to that release's
# "SHA256 Checksums" entries for cloudflared-linux-amd64.deb and cloudflared-linux-arm64.deb
# (or compute them: curl -fsSL <release>/download/<version>/cloudflared-linux-amd64.deb | sha256sum).
# The build refuses to continue without a matching checksum: the binary that carries every
# webhook is never taken on trust, and never downloaded at run time.
#
# Bumping Node: change NODE_IMAGE to a newer node:22.x.y-bookworm-slim tag (optionally with
# @sha256:<digest> to pin the exact image).

ARG NODE_IMAGE=node:22.23.2-bookworm-slim

# ---- build: type-check, then bundle the service into dist/nomad-gha-dispatcher.mjs -----------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script would compile before the sources are here, and the
# cloudflared wrapper's postinstall would try to download a binary. (esbuild finds its platform
# binary through its optional dependency without its install script.)
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# ---- cloudflared: fetch and verify the pinned .deb ---------------------------------------------
FROM ${NODE_IMAGE} AS cloudflared
ARG TARGETARCH
ARG CLOUDFLARED_VERSION=2026.8.2
ARG CLOUDFLARED_DEB_SHA256_AMD64=""
ARG CLOUDFLARED_DEB_SHA256_ARM64=""
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    arch="${TARGETARCH:-amd64}"; \
    case "$arch" in \
      amd64) sha="$CLOUDFLARED_DEB_SHA256_AMD64" ;; \
      arm64) sha="$CLOUDFLARED_DEB_SHA256_ARM64" ;; \
      *) echo "no cloudflared .deb for architecture $arch" >&2; exit 1 ;; \
    esac; \
    if ! printf '%s' "$sha" | grep -Eq '^[0-9a-f]{64}$'; then \
      echo "CLOUDFLARED_DEB_SHA256_$(echo "$arch" | tr a-z A-Z) must be the sha256 of cloudflared-linux-$arch.deb $CLOUDFLARED_VERSION (see the top of this Dockerfile)" >&2; \
      exit 1; \
    fi; \
    curl -fsSL --retry 3 -o /tmp/cloudflared.deb \
      "https://github.com/cloudflare/cloudflared/releases/download/${CLOUDFLARED_VERSION}/cloudflared-linux-${arch}.deb"; \
    echo "$sha  /tmp/cloudflared.deb" | sha256sum -c -

# ---- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ARG CLOUDFLARED_VERSION=2026.8.2
LABEL org.opencontainers.image.title="nomad-gha-dispatcher" \
      org.opencontainers.image.description="Ephemeral GitHub Actions runners on Nomad, fed by webhooks through an outbound Cloudflare tunnel" \
      org.opencontainers.image.licenses="MIT" \
      io.cloudflare.cloudflared.version="${CLOUDFLARED_VERSION}"

# ca-certificates: cloudflared verifies api.trycloudflare.com and the Cloudflare API with the
# system trust store (Node brings its own). The .deb is bind-mounted, so it leaves no layer.
RUN --mount=type=bind,from=cloudflared,source=/tmp/cloudflared.deb,target=/tmp/cloudflared.deb \
    set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    dpkg -i /tmp/cloudflared.deb; \
    [ -x /usr/local/bin/cloudflared ] || ln -s /usr/bin/cloudflared /usr/local/bin/cloudflared; \
    /usr/local/bin/cloudflared --version; \
    rm -rf /var/lib/apt/lists/*

WORKDIR /app
# One bundled file is the whole service: no node_modules, nothing installed at this stage.
COPY --from=build /app/dist/nomad-gha-dispatcher.mjs /app/dist/nomad-gha-dispatcher.mjs.map /app/dist/nomad-gha-dispatcher.mjs.LEGAL.txt ./dist/
COPY jobs ./jobs
COPY wrangler-free-tunnel.yml ./

# MALLOC_MMAP_THRESHOLD_: glibc serves allocations above 128 KB with mmap and returns them on
# free. Left dynamic, the threshold rises after the first such free, large buffers then come
# from the heaps, and a thread's heap kept up to 10 MB that it no longer used (idle RSS varied
# from 62 to 72 MB between runs; with this fixed it is 59 every run: README, Performance).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    METRICS_PORT=9102 \
    CLOUDFLARED_BIN=/usr/local/bin/cloudflared \
    MALLOC_MMAP_THRESHOLD_=131072

# The node image's unprivileged user (uid 1000). Nothing here needs root: the tunnel dials out.
USER node

# Documentation only: webhooks arrive through the outbound tunnel, so nothing needs publishing.
# 8080 serves /healthz and /readyz for the orchestrator's checks; 9102 (/metrics) is for an
# internal Prometheus scrape and is never routed through the tunnel.
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT || 8080}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["node", "dist/nomad-gha-dispatcher.mjs"]
CMD ["serve"]
