// Assemble a running daemon from a frozen set of boot options: secret store, driver, git source, gateway,
// the reconcile loop and the HTTP endpoint. `fleet daemon` and the tests both start the daemon through here.
import type { Logger } from 'pino';
import { join, resolve } from 'node:path';
import { Daemon } from './daemon.ts';
import { createDriver, driverLayout } from './drivers/index.ts';
import type { Health } from './health.ts';
import { createGitSource, type GitSource } from './git/source.ts';
import { createCaddyGateway } from './gateway/caddy.ts';
import { startHttp, type HttpDeps } from './http.ts';
import { ensureOperatorToken } from './api/token.ts';
import { removeDaemonInfo, writeDaemonInfo } from './api/discovery.ts';
import { gatewayLinks } from './dashboard/routes.ts';
import { createFleetObservers } from './notify/assemble.ts';
import type { Registry } from './registry/registry.ts';
import { createSecretStore } from './secrets/index.ts';
import type { FleetSecretStore } from './secrets/refs.ts';
import type { BackoffOptions } from './core/backoff.ts';
import type { Driver, FleetConfig } from './core/types.ts';
import { watchWorktree } from './git/watch.ts';

export interface BootOptions {
  log: Logger;
  /** The fleet repository: the working copy to follow (local), or where to clone (remote). */
  repoDir: string;
  /** Clone this URL instead of following repoDir's branch. */
  remoteUrl?: string;
  /** Where the clone token lives when fleet.yaml names none (FLEET_GIT_TOKEN_SECRET). */
  gitTokenSecret?: string;
  fleet: FleetConfig;
  stateDir: string;
  registryUrl: string;
  adminUrl: string;
  httpPort: number;
  /** Loopback by default; the compose deployment listens on its internal network so Caddy can ask it. */
  httpHost?: string;
  intervalMs: number;
  watchWorktree?: boolean;
  /** Caddy admin URL; null turns the gateway off. Default: fleet.yaml gateway.admin. */
  caddyAdmin?: string | null;
  gatewayOverride?: Partial<FleetConfig['gateway']>;
  backoff?: BackoffOptions;
  /** Tests wrap the real driver or store to inject one fault. */
  driver?: Driver;
  /** The /ready probe (default: HTTP GET); tests with an in-memory driver answer it themselves. */
  probe?: (upstream: string) => Promise<Health>;
  secrets?: FleetSecretStore;
  webhookSecret?: string;
  backupDir?: string;
  /** First port handed to process-driver instances (default 4100); parallel test fleets need their own range. */
  portBase?: number;
  /** Do not start the pass loop: the caller runs `daemon.pass()` itself (benchmarks). */
  manual?: boolean;
  /** How many projects one pass converges side by side (default 8; FLEET_CONCURRENCY). */
  concurrency?: number;
  /** Milliseconds between health probe rounds (default 10 s; FLEET_HEALTH_INTERVAL). */
  healthIntervalMs?: number;
  /** Shows a newly created operator token at the terminal (`fleet daemon --dev` with the local store); never logged. */
  announceToken?: (text: string) => void;
}

export interface RunningDaemon {
  daemon: Daemon;
  httpUrl: string;
  secrets: FleetSecretStore;
  driver: Driver;
  stop(): Promise<void>;
}

export async function bootDaemon(o: BootOptions): Promise<RunningDaemon> {
  const { log, fleet } = o;
  const stateDir = resolve(o.stateDir);
  const secrets = o.secrets ?? createSecretStore(fleet.secretStore, { stateDir, log });
  const driver = o.driver ?? await createDriver(fleet.driver, {
    stateDir: join(stateDir, 'instances'), log: log.child({ component: 'driver' }),
    network: fleet.docker?.network, socketPath: fleet.docker?.socketPath, swarm: fleet.swarm,
  });
  const tokenRef = fleet.git?.tokenSecret ?? o.gitTokenSecret;
  const source: GitSource = o.remoteUrl
    ? createGitSource('remote', {
      url: o.remoteUrl, branch: fleet.branch, dir: join(stateDir, 'repo'), log,
      token: tokenRef ? () => secrets.get(tokenRef) : undefined,
    })
    : createGitSource('local', { repoDir: o.repoDir, branch: fleet.branch });
  const caddyAdmin = o.caddyAdmin === undefined ? fleet.gateway.admin : o.caddyAdmin;
  // The operator token guards every HTTP route but /healthz, the webhook and Caddy's ask; created on first start.
  const operatorToken = await ensureOperatorToken({
    secrets, prefix: fleet.secretStore.prefix, log, where: fleet.secretStore.type === 'local' ? `files under ${join(stateDir, 'secrets')}` : fleet.secretStore.type,
    announce: fleet.secretStore.type === 'local' ? o.announceToken : undefined,
  });
  let daemon: Daemon;
  // Metrics and notifications, one set per daemon; they keep their memory in the registry once it exists.
  const obs = createFleetObservers({ log, secrets, repoUrl: o.remoteUrl ?? resolve(o.repoDir), retry: o.backoff });
  // The endpoint starts first (its URL is Caddy's permission URL); its registry is the daemon's, set below.
  const httpDeps: HttpDeps = {
    registry: undefined as unknown as Registry, log, webhookSecret: o.webhookSecret,
    last: () => daemon.last, kick: (f) => daemon.kick(f), operatorToken, sync: () => daemon.syncNow(),
    backups: { adminUrl: o.adminUrl, adminFor: (id) => daemon.adminUrlOf(id), backupDir: o.backupDir ?? join(stateDir, 'backups') },
    dashboard: { driver, links: gatewayLinks(fleet.gateway) }, metrics: obs.metrics,
  };
  const http = await startHttp(httpDeps, o.httpPort, o.httpHost);
  // How a CLI on this machine finds the endpoint (the token it reads from the secret store).
  writeDaemonInfo(stateDir, { url: http.url, pid: process.pid, startedAt: new Date().toISOString() });
  daemon = new Daemon({
    log, stateDir, registryUrl: o.registryUrl, adminUrl: o.adminUrl, instanceDbHost: fleet.postgres.instanceHost, postgres: fleet,
    source, worktree: o.watchWorktree, driver, layout: driverLayout(fleet.driver, { network: fleet.docker?.network }), secrets, secretPrefix: fleet.secretStore.prefix, sharedSecrets: fleet.sharedSecrets,
    repoUrl: o.remoteUrl ?? resolve(o.repoDir), intervalMs: o.intervalMs, fetchIntervalMs: o.remoteUrl ? fleet.pollInterval * 1000 : 0,
    backoff: o.backoff, backupDir: o.backupDir, portBase: o.portBase, probe: o.probe,
    concurrency: o.concurrency, healthIntervalMs: o.healthIntervalMs, observer: obs.observer,
    gateway: caddyAdmin ? {
      caddy: createCaddyGateway({ adminUrl: caddyAdmin, log }), override: o.gatewayOverride,
      permissionUrl: fleet.gateway.onDemandTls ? `${http.url}/gateway/allow` : undefined,
    } : null,
  });
  httpDeps.registry = daemon.registry;
  obs.attach(daemon.registry);
  const watcher = o.watchWorktree ? watchWorktree(o.repoDir, () => daemon.kick()) : null;
  // A save right after start must not wait for the next poll.
  await watcher?.ready;
  if (!o.manual) daemon.start();
  log.info({ http: http.url, driver: fleet.driver, secretStore: fleet.secretStore.type, gateway: caddyAdmin ?? 'off' }, 'fleet daemon started');
  return {
    daemon, httpUrl: http.url, secrets, driver,
    async stop() {
      await watcher?.close();
      removeDaemonInfo(stateDir);
      await http.close();
      await daemon.stop();
      obs.close();
    },
  };
}
