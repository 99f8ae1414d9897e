// `fleet daemon`: follow the tracked branch and converge the fleet until stopped (SIGINT/SIGTERM).
import type { Command } from '../command.ts';
import { join, resolve } from 'node:path';
import { bootDaemon } from '../../daemon/boot.ts';
import { parseNumber, readEnv } from '../../daemon/config/env.ts';
import { privateDir } from '../../daemon/files.ts';
import { createLogger } from '../../daemon/log.ts';
import { loadFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { resolveDatabases, stateDirFor, superuserPasswordFile } from '../../daemon/postgres/resolve.ts';
import { createSecretStore } from '../../daemon/secrets/index.ts';
import { bootstrapRemote } from '../../daemon/git/bootstrap.ts';
import { startLocalCaddy } from '../../daemon/dev/local-caddy.ts';
import { printUrlsOnChange, withoutPassword } from '../urls.ts';
import { readWorktree } from '../../daemon/git/worktree.ts';
import { secretRefsOf } from '../../daemon/provision/project.ts';
import { generateSecret } from '../../daemon/secrets/generate.ts';
import type { FleetConfig, SecretStore } from '../../daemon/core/types.ts';
import type { Logger } from 'pino';

const command: Command = {
  summary: 'Run the watcher daemon: follow the tracked branch and converge databases, secrets, instances and the gateway.',
  usage: 'fleet daemon [--dev] [--watch-worktree] [--remote URL] [--state-dir DIR] [--registry URL] [--postgres URL] [--http-port N] [--interval SECONDS] [--no-gateway]',
  options: {
    dev: { type: 'boolean' },
    'watch-worktree': { type: 'boolean' },
    remote: { type: 'string' },
    'state-dir': { type: 'string' },
    registry: { type: 'string' },
    postgres: { type: 'string' },
    'http-port': { type: 'string' },
    interval: { type: 'string' },
    'no-gateway': { type: 'boolean' },
  },
  async run({ values, repo }) {
    const v = values as Record<string, string | boolean | undefined>;
    // The environment and the flags first: a malformed value stops the daemon before it touches anything.
    const env = readEnv();
    const httpPort = typeof v['http-port'] === 'string' ? parseNumber('--http-port', v['http-port'], 'listenPort') : env.httpPort;
    const intervalSec = typeof v.interval === 'string' ? parseNumber('--interval', v.interval, 'seconds') : env.interval;
    // --dev: lines for the person at the terminal; otherwise JSON for a log collector.
    const log = createLogger({ level: env.logLevel, pretty: v.dev === true });
    const repoDir = resolve(repo);
    const stateDir = stateDirFor(repoDir, env, v['state-dir'] as string | undefined);
    // Before anything writes into it (secrets, Postgres, the clone): the state dir is the daemon user's alone.
    privateDir(stateDir);
    const remoteUrl = (v.remote as string | undefined) ?? env.repoUrl;
    const fleet = remoteUrl
      ? await bootstrapRemote({ url: remoteUrl, stateDir, log, env })
      : await loadFleetConfig(join(repoDir, 'fleet.yaml'), { repoDir });
    const secrets = createSecretStore(fleet.secretStore, { stateDir, log });
    if (v.dev && !remoteUrl && fleet.secretStore.type === 'local') await seedDevSecrets(repoDir, fleet, secrets, log);
    const dbs = await resolveDatabases({
      fleet, secrets, stateDir, log, pgPort: env.pgPort,
      registry: (v.registry as string | undefined) ?? env.registryUrl,
      admin: (v.postgres as string | undefined) ?? env.postgresUrl,
    });
    const noGateway = v['no-gateway'] === true;
    const caddy = v.dev && !noGateway ? await startLocalCaddy({ adminUrl: fleet.gateway.admin, stateDir, log }) : null;
    const running = await bootDaemon({
      log, repoDir, remoteUrl, gitTokenSecret: env.gitTokenSecret, fleet, stateDir, registryUrl: dbs.registryUrl, adminUrl: dbs.adminUrl, httpPort,
      // First port of process-driver instances (default 4100): a second fleet on the same machine needs another.
      httpHost: env.httpHost, portBase: env.portBase,
      concurrency: env.concurrency, healthIntervalMs: env.healthInterval === undefined ? undefined : env.healthInterval * 1000,
      intervalMs: intervalSec * 1000, watchWorktree: v['watch-worktree'] === true, secrets,
      caddyAdmin: noGateway ? null : fleet.gateway.admin,
      webhookSecret: fleet.git?.webhookSecret ? await secrets.get(fleet.git.webhookSecret) : undefined,
      // A new operator token (local store only) goes to this terminal once, not through the logger.
      announceToken: (text) => process.stdout.write(text),
    });
    const stopUrls = v.dev ? printUrlsOnChange(running.daemon, fleet, {
      dashboardUrl: running.httpUrl,
      postgres: {
        url: withoutPassword(dbs.adminUrl),
        note: fleet.postgres.admin === 'embedded' && !((v.postgres as string | undefined) ?? env.postgresUrl)
          ? `superuser password in ${superuserPasswordFile(stateDir)}, mode 0600` : 'credentials as given: --postgres, FLEET_POSTGRES_URL or fleet.yaml postgres.admin',
      },
    }) : () => {};
    await new Promise<void>((resolveStop) => {
      const stop = (signal: string) => {
        log.info({ signal }, 'stopping: instances keep running and are re-adopted at the next start');
        resolveStop();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    stopUrls();
    await running.stop();
    await caddy?.stop();
    return 0;
  },
};

/**
 * A laptop run of the example fleet must come up (`npm start`), but a manifest may reference a secret nobody has
 * set yet (shop's STRIPE_API_KEY). With --dev and the local store only, such a secret gets a random placeholder,
 * named in a warning; production stores are never written to here.
 */
async function seedDevSecrets(repoDir: string, fleet: FleetConfig, secrets: SecretStore, log: Logger): Promise<void> {
  const prefix = fleet.secretStore.prefix;
  const { projects } = await readWorktree(repoDir);
  for (const p of projects) {
    for (const [name, ref] of Object.entries(secretRefsOf({ secretPrefix: prefix, sharedSecrets: fleet.sharedSecrets }, p.manifest))) {
      if (name === 'DATABASE_URL' || name === 'JWT_SECRET' || (await secrets.has(ref))) continue;
      await secrets.put(ref, `dev-placeholder-${generateSecret(16)}`);
      log.warn({ project: p.id, secret: ref }, `--dev: ${ref} was not set; stored a random placeholder (set the real value on standard input: fleet secrets set ${p.id} ${name} < file)`);
    }
  }
}

export default command;
