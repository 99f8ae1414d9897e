// `fleet backup <id>` takes a verified custom-format dump of a project's database now (kind manual);
// `fleet backup --registry` dumps the registry database. Both land in the one backup layout under the state dir.
// Also the small helpers `fleet backups` and `fleet restore` share: where things are, and progress lines.
import type { Command } from '../command.ts';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { readEnv, type FleetEnv } from '../../daemon/config/env.ts';
import { createLogger } from '../../daemon/log.ts';
import { FleetError } from '../../daemon/core/errors.ts';
import type { FleetConfig } from '../../daemon/core/types.ts';
import { loadFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { embeddedRegistryUrl, registryUrlFor, stateDirFor } from '../../daemon/postgres/resolve.ts';
import { Registry } from '../../daemon/registry/registry.ts';
import { createSecretStore } from '../../daemon/secrets/index.ts';
import type { Progress } from '../../daemon/backup/archive.ts';
import type { BackupInfo } from '../../daemon/backup/layout.ts';
import { backupRegistry, takeBackup } from '../../daemon/backup/take.ts';
import { projectServer } from '../project-server.ts';

export interface CliContext {
  env: FleetEnv;
  repoDir: string;
  fleet: FleetConfig | null;
  stateDir: string;
  /** `<state>/backups`: where the daemon and the CLI keep every dump. */
  backupDir: string;
}

export async function cliContext(repo: string, stateFlag: unknown): Promise<CliContext> {
  const env = readEnv();
  const repoDir = resolve(repo);
  const file = join(repoDir, 'fleet.yaml');
  const fleet = existsSync(file) ? await loadFleetConfig(file, { repoDir }) : null;
  const stateDir = stateDirFor(repoDir, env, typeof stateFlag === 'string' ? stateFlag : undefined);
  return { env, repoDir, fleet, stateDir, backupDir: join(stateDir, 'backups') };
}

export async function openRegistry(ctx: CliContext, flag: unknown): Promise<Registry> {
  const url = await registryUrlFor(ctx.repoDir, typeof flag === 'string' ? flag : undefined, ctx.env, { stateDir: ctx.stateDir, fleet: ctx.fleet ?? undefined });
  return new Registry(url, createLogger({ level: 'silent' }));
}

/** The default server's (main) admin URL: --postgres, FLEET_POSTGRES_URL, the embedded cluster's, or fleet.yaml's secret reference. */
async function adminUrlFor(ctx: CliContext, flag: unknown): Promise<string> {
  if (typeof flag === 'string') return flag;
  if (ctx.env.postgresUrl) return ctx.env.postgresUrl;
  if (!ctx.fleet) throw new FleetError('USAGE', 'no fleet.yaml here: pass --repo DIR, or --postgres URL');
  if (ctx.fleet.postgres.admin === 'embedded') {
    const u = new URL(await embeddedRegistryUrl(ctx.stateDir, ctx.env.pgPort));
    u.pathname = '/postgres';
    return u.toString();
  }
  return createSecretStore(ctx.fleet.secretStore, { stateDir: ctx.stateDir, log: createLogger({ level: 'silent' }) }).get(ctx.fleet.postgres.admin);
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** `restoring blog: 45% (18/40), 12 s` — one progress line. */
export function formatProgress(label: string, p: Pick<Progress, 'phase' | 'done' | 'total'>, elapsedMs: number): string {
  const verb = p.phase === 'dump' ? 'dumping' : 'restoring';
  const amount = p.total ? `${Math.min(100, Math.floor((100 * p.done) / p.total))}% (${p.done}/${p.total})` : `${p.done} ${p.phase === 'dump' ? 'tables' : 'items'}`;
  return `${verb} ${label}: ${amount}, ${Math.round(elapsedMs / 1000)} s`;
}

/** Progress on stderr, only for work that takes more than a few seconds, at most every 2 s. */
export function progressPrinter(label: string, afterMs = 3000): (p: Pick<Progress, 'phase' | 'done' | 'total'>) => void {
  const start = Date.now();
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - start < afterMs || now - last < 2000) return;
    last = now;
    process.stderr.write(`${formatProgress(label, p, now - start)}\n`);
  };
}

export function describeInfo(b: BackupInfo): string {
  return `${b.file} (${formatSize(b.size)}${b.commit ? `, commit ${b.commit.slice(0, 7)}` : ''})`;
}

const command: Command = {
  summary: 'Back up a project\'s database now (pg_dump custom format, verified), or the registry with --registry.',
  usage: 'fleet backup <id> | --registry [--format text|json] [--state-dir DIR] [--registry-url URL] [--postgres URL]',
  options: {
    registry: { type: 'boolean' }, 'registry-url': { type: 'string' }, postgres: { type: 'string' },
    'state-dir': { type: 'string' }, format: { type: 'string', default: 'text' },
  },
  async run({ values, positionals, repo }) {
    const [id] = positionals;
    if ((!id && !values.registry) || (id && values.registry) || positionals.length > 1) throw new FleetError('USAGE', `usage: ${command.usage}`);
    const ctx = await cliContext(repo, values['state-dir']);
    const registry = await openRegistry(ctx, values['registry-url']);
    try {
      let info: BackupInfo;
      if (values.registry) {
        info = await backupRegistry({ registryUrl: registry.url, backupDir: ctx.backupDir, kind: 'manual', onProgress: progressPrinter('the registry') });
      } else {
        // pg_dump runs against the server the project's database lives on (a moved one: fleet.yaml's reference).
        const { adminUrl } = await projectServer({
          registry, project: id, fleet: ctx.fleet, main: () => adminUrlFor(ctx, values.postgres),
          secrets: () => createSecretStore(ctx.fleet!.secretStore, { stateDir: ctx.stateDir, log: createLogger({ level: 'silent' }) }),
        });
        info = await takeBackup({
          adminUrl, backupDir: ctx.backupDir, project: id, kind: 'manual', registry, actor: userInfo().username, onProgress: progressPrinter(id),
        });
      }
      if (values.format === 'json') console.log(JSON.stringify(info, null, 2));
      else console.log(`backup of ${values.registry ? 'the registry' : id} written: ${describeInfo(info)}`);
      return 0;
    } finally {
      await registry.close();
    }
  },
};

export default command;
