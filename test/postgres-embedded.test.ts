// The embedded Postgres of a laptop run: a random superuser password kept in the state dir (0600), parents made
// traversable but never listable, and a cluster initialised with the old default password moved to a random one.
import { afterAll, afterEach, beforeEach, expect, it, vi } from 'vitest';
import pg from 'pg';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbedded } from '../daemon/postgres/embedded.ts';
import { embeddedRegistryUrl, resolveDatabases } from '../daemon/postgres/resolve.ts';
import { createLogger } from '../daemon/log.ts';
import type { FleetConfig, SecretStore } from '../daemon/core/types.ts';
import { freePort } from './harness/ports.ts';
import { connectError } from './harness/postgres.ts';

const log = createLogger({ level: 'silent' });
const fleet = { postgres: { admin: 'embedded' } } as FleetConfig;
const roots: string[] = [];
let stateDir: string;
let parent: string;

function urlWith(password: string, database = 'postgres'): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${process.env.FLEET_PG_PORT}/${database}`;
}

/** SQLSTATE of a failed login (28P01: wrong password), or null when it connects. */
const loginError = async (url: string) => { const e = await connectError(url); return e && (e.code ?? e.message); };

function stopCluster(dataDir: string): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return Promise.resolve();
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  try { process.kill(pid, 'SIGINT'); } catch { return Promise.resolve(); }
  return vi.waitFor(() => {
    try { process.kill(pid, 0); } catch { return; }
    throw new Error('still running');
  }, { timeout: 10_000, interval: 20 });
}

const passwordFile = () => join(stateDir, 'pg-superuser-password');
const resolveEmbedded = () => resolveDatabases({ fleet, secrets: {} as SecretStore, stateDir, log });

beforeEach(async () => {
  // A private parent and a private state dir, as a home directory would be.
  parent = mkdtempSync(join(tmpdir(), 'fleet-home-'));
  roots.push(parent);
  stateDir = join(parent, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  process.env.FLEET_PG_PORT = String(await freePort());
});
afterEach(async () => stopCluster(join(stateDir, 'pg')));
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

it('a fresh cluster gets a random superuser password in <stateDir>/pg-superuser-password (0600); parents become 0711, never listable', async () => {
  const dbs = await resolveEmbedded();
  expect(existsSync(passwordFile())).toBe(true);
  expect(statSync(passwordFile()).mode & 0o777).toBe(0o600);
  const password = readFileSync(passwordFile(), 'utf8').trim();
  expect(password).not.toBe('postgres');
  expect(password.length).toBeGreaterThanOrEqual(32);
  expect(decodeURIComponent(new URL(dbs.adminUrl).password)).toBe(password);
  expect(await loginError(urlWith('postgres'))).toBe('28P01');
  expect(await loginError(dbs.registryUrl)).toBeNull();
  // Postgres runs as user `postgres` and only needs to traverse the parents.
  expect(statSync(stateDir).mode & 0o777).toBe(0o711);
  expect(statSync(parent).mode & 0o777).toBe(0o711);
  // `fleet status` / `fleet plan --against-registry` find the registry with the password from the state dir.
  expect(await embeddedRegistryUrl(stateDir)).toBe(dbs.registryUrl);
  expect(new URL(dbs.registryUrl).pathname).toBe('/fleet_registry');
  // A second start (the cluster left running) keeps the same password.
  expect((await resolveEmbedded()).adminUrl).toBe(dbs.adminUrl);
});

it('a cluster initialised with the old password `postgres` keeps working, and gets a random password once', async () => {
  const old = await startEmbedded({ dataDir: join(stateDir, 'pg'), port: Number(process.env.FLEET_PG_PORT), password: 'postgres' });
  await old.stop();
  const dbs = await resolveEmbedded();
  const password = readFileSync(passwordFile(), 'utf8').trim();
  expect(password).not.toBe('postgres');
  expect(statSync(passwordFile()).mode & 0o777).toBe(0o600);
  expect(await loginError(urlWith('postgres'))).toBe('28P01');
  expect(await loginError(urlWith(password))).toBeNull();
  expect(decodeURIComponent(new URL(dbs.adminUrl).password)).toBe(password);
  expect((await resolveEmbedded()).adminUrl).toBe(dbs.adminUrl);
});

it('a rotation interrupted after ALTER USER is completed at the next start', async () => {
  await resolveEmbedded();
  const current = readFileSync(passwordFile(), 'utf8').trim();
  const next = 'NextPassword0123456789abcdefghij';
  // The daemon died between ALTER USER and moving the new password into place.
  const c = new pg.Client(urlWith(current));
  await c.connect();
  await c.query(`ALTER USER postgres PASSWORD '${next}'`);
  await c.end();
  writeFileSync(`${passwordFile()}.next`, next, { mode: 0o600 });
  const dbs = await resolveEmbedded();
  expect(decodeURIComponent(new URL(dbs.adminUrl).password)).toBe(next);
  expect(readFileSync(passwordFile(), 'utf8').trim()).toBe(next);
  expect(existsSync(`${passwordFile()}.next`)).toBe(false);
});

it('stop() keeps the event loop alive until the cluster has exited: cleanup after it runs in a script that ends there', async () => {
  // The child handle is unref'd (a stopping daemon must not hang on it), so with nothing else pending node left
  // while stop() was still waiting: the script's next line (a test harness removing the data dir) never ran, and
  // 8 GB clusters of bench fleets stayed behind until the disk was full.
  const dir = mkdtempSync(join(tmpdir(), 'fleet-pg-stop-'));
  roots.push(dir);
  const script = join(dir, 'stop.mts');
  writeFileSync(script, [
    `import { writeFileSync } from 'node:fs';`,
    `import { startEmbedded } from ${JSON.stringify(new URL('../daemon/postgres/embedded.ts', import.meta.url).pathname)};`,
    `const c = await startEmbedded({ dataDir: ${JSON.stringify(join(dir, 'data'))}, port: ${await freePort()}, password: 'pw-${Date.now()}', fast: true });`,
    `await c.stop();`,
    `writeFileSync(${JSON.stringify(join(dir, 'after-stop'))}, 'ran');`,
  ].join('\n'));
  const { execFileSync } = await import('node:child_process');
  let status = 0;
  try {
    execFileSync(process.execPath, ['--import', 'tsx', script], { cwd: new URL('..', import.meta.url).pathname, stdio: 'pipe', timeout: 60_000 });
  } catch (err) {
    status = (err as { status?: number }).status ?? -1;
    if (status !== 13) throw new Error(`the script failed: ${String((err as { stderr?: Buffer }).stderr ?? err).slice(0, 2000)}`);
  }
  expect({ status, after: existsSync(join(dir, 'after-stop')) }).toEqual({ status: 0, after: true });
}, 90_000);
