# The fleet daemon. tsx runs the TypeScript at runtime (it is a production dependency): no build step.
FROM node:24-bookworm-slim

# pg_dump 15 for the backup taken before a project's database is dropped.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json ./
COPY scripts ./scripts
COPY daemon ./daemon
COPY schemas ./schemas

# Non-root; uid 10001 must own the state directory mounted at /var/lib/atomo-fleet (see compose.yaml).
RUN groupadd --system --gid 10001 fleet \
 && useradd --system --uid 10001 --gid fleet --home-dir /var/lib/atomo-fleet --no-create-home fleet \
 && install -d -o fleet -g fleet /var/lib/atomo-fleet
USER fleet
# Every module transformed now, as the user the daemon runs as: at run time tsx finds them in its cache and never
# starts esbuild, whose service would stay beside the daemon for its whole life.
RUN node scripts/warm-cache.js

ENV NODE_ENV=production FLEET_STATE_DIR=/var/lib/atomo-fleet FLEET_HTTP_PORT=8081
EXPOSE 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://' + (process.env.FLEET_HTTP_HOST || '127.0.0.1') + ':8081/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# --max-semi-space-size=1 --expose-gc: DAEMON_NODE_FLAGS in daemon/config/defaults.ts (RSS of an idle daemon).
CMD ["node", "--max-semi-space-size=1", "--expose-gc", "scripts/fleet.js", "daemon"]
