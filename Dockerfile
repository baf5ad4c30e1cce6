# syntax=docker/dockerfile:1
# zt-gateway image: build with the dev toolchain, run with production dependencies and dist/ only.
#
#   docker build --build-arg ZT_BUILD_COMMIT="$(git rev-parse HEAD)" -t zt-gateway .
#   docker run --rm --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
#     -p 8443:8443 -v "$PWD/my-config:/etc/zt-gateway:ro" zt-gateway
#
# The config directory is mounted at /etc/zt-gateway (gateway.yaml plus the files it names, relative to it).
# The gateway writes nothing to its filesystem (logs go to stdout), so the root filesystem can be read-only;
# /tmp as a tmpfs is there for Node's and the libraries' temporary files. A `log.audit` file path must point
# into a mounted volume.
# The HEALTHCHECK asks the admin listener, so the config needs `admin: { listen: 127.0.0.1:9090 }`
# (or 0.0.0.0:9090 for Kubernetes probes); set ZT_HEALTHCHECK_URL when you use another address.
#
# `--target demo` builds the image of deploy/compose's demo app and demo IdP (dev dependencies included: it is
# not for production). The build is not exercised in this repository's CI (no Docker engine there):
# test/unit/deploy-container.test.ts checks this file statically.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
# The build context has no .git: pass the commit for zt_build_info and `zt-gateway --version`
#   docker build --build-arg ZT_BUILD_COMMIT="$(git rev-parse HEAD)" -t zt-gateway .
# (without it the image reports commit "unknown"). scripts/build-info.ts writes it to dist/build-info.json.
ARG ZT_BUILD_COMMIT=
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build-info.ts ./scripts/build-info.ts
COPY src ./src
RUN npm run build

# The demo app and demo IdP of examples/demo (oidc-provider and ws are dev dependencies).
FROM build AS demo
COPY examples/demo ./examples/demo
USER 1000:1000
EXPOSE 8080 9000
CMD ["node", "examples/demo/app.js", "--host", "127.0.0.1", "--port", "8080"]

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    ZT_HEALTHCHECK_URL=http://127.0.0.1:9090/healthz
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
    && mkdir -p /etc/zt-gateway
COPY --from=build /build/dist ./dist
COPY bin ./bin
COPY config/schema.json ./config/schema.json
# Envoy's ext_authz protos (Apache-2.0, proto/README.md), loaded only when the config has `ext_authz`.
COPY proto ./proto
# Everything above is owned by root and read-only for the gateway; it runs as the image's `node` user (1000),
# numerically, so that Kubernetes can check runAsNonRoot.
USER 1000:1000
EXPOSE 8443 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.ZT_HEALTHCHECK_URL, { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1: the gateway handles SIGTERM itself (stop accepting, drain, exit).
ENTRYPOINT ["node", "/app/bin/zt-gateway.js"]
CMD ["start", "--config", "/etc/zt-gateway/gateway.yaml"]
