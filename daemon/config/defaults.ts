// Defaults that more than one place must agree on. The JSON schemas cannot import them: a test pins each copy.

/**
 * The docker network project instances join when fleet.yaml names none: compose.yaml's `fleet-projects`, the
 * network Caddy proxies on (schemas/fleet.schema.json docker.network default, fleet-config.ts, drivers/docker.ts).
 */
export const DEFAULT_DOCKER_NETWORK = 'fleet-projects';

/** The daemon's HTTP port (FLEET_HTTP_PORT, --http-port). */
export const DEFAULT_HTTP_PORT = 8081;
/** Seconds between reconcile passes (FLEET_INTERVAL, --interval). */
export const DEFAULT_INTERVAL_SECONDS = 5;
/** The embedded Postgres of a laptop run (FLEET_PG_PORT). */
export const DEFAULT_PG_PORT = 54329;

/**
 * Node flags the daemon runs with (Dockerfile CMD, `npm start`; a test pins each copy). A young generation of 1 MiB
 * per semi-space instead of V8's 16: an idle daemon at 1,000 projects stays near 110 MiB of RSS instead of 155
 * (`npm run bench -- ops`), for slightly more frequent, cheap scavenges. `--expose-gc`: after a pass that looked at
 * many projects the daemon collects at once (daemon.ts pass()); V8 alone handed the memory back ~10 s later.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--expose-gc'] as const;
