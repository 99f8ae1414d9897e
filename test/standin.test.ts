// The stand-in instance as a real child process against a real Postgres: the contract of instance-contract.md.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres, type TestPostgres } from './harness/postgres.ts';
import { freePort } from './harness/ports.ts';

const STANDIN = fileURLToPath(new URL('../daemon/dev/standin.mjs', import.meta.url));
const SCHEMA = 'export interface Post { id: string; title: string; }\nexport interface BlogCategory { id: string; name: string; }\n';
const JWT = 'jwt-value-that-must-never-be-printed-7f3a';

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  port: number;
}

let pgc: TestPostgres;
let dir: string;
let dbCount = 0;
const children: ChildProcess[] = [];

beforeAll(async () => {
  pgc = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'standin-test-'));
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await pgc?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function schemaFile(content = SCHEMA): string {
  const path = join(dir, `schema-${++dbCount}.ts`);
  writeFileSync(path, content);
  return path;
}

async function run(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, [STANDIN], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ATOMO_PROJECT_ID: 'acme', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, output: () => out, exited, port };
}

async function get(port: number, path: string): Promise<{ status: number; body: string; type: string | null }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
  } catch {
    return { status: 0, body: '', type: null };
  }
}

async function booted(env: Record<string, string>): Promise<Running> {
  const r = await run(env);
  await expect.poll(async () => (await get(r.port, '/health')).status, { timeout: 15_000 }).toBe(200);
  return r;
}

async function tables(url: string): Promise<string[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    const res = await client.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1");
    return res.rows.map((row) => row.tablename as string);
  } finally {
    await client.end();
  }
}

async function polls(port: number): Promise<number> {
  const m = /atomo_schema_watch_polls_total (\d+)/.exec((await get(port, '/metrics')).body);
  return m ? Number(m[1]) : -1;
}

describe('stand-in instance', () => {
  it('migrates, serves the contract endpoints, and reports /ready from its database', async () => {
    const url = await pgc.database('standin_boot');
    const schemaPath = schemaFile();
    const r = await booted({ DATABASE_URL: url, ATOMO_SCHEMA_PATH: schemaPath, JWT_SECRET: JWT, ATOMO_ENV: 'production' });

    expect(await tables(url)).toEqual(['audit_log', 'blog_categories', 'posts', 'sessions', 'users']);
    expect(await get(r.port, '/health')).toMatchObject({ status: 200, body: 'OK', type: 'text/plain' });
    expect((await get(r.port, '/ready')).status).toBe(200);
    const meta = JSON.parse((await get(r.port, '/meta/schema')).body);
    expect(meta).toEqual({
      models: ['Post', 'BlogCategory'],
      digest: createHash('sha256').update(SCHEMA).digest('hex'),
      project: 'acme',
    });
    expect(JSON.parse((await get(r.port, '/version')).body)).toMatchObject({ name: 'atomo-server-standin', version: expect.any(String) });
    expect((await get(r.port, '/metrics')).body).toContain('atomo_standin_up 1');
    expect(JSON.parse((await get(r.port, '/some/page')).body)).toMatchObject({ project: 'acme', path: '/some/page' });

    await pgc.stop();
    try {
      await expect.poll(async () => (await get(r.port, '/ready')).status, { timeout: 15_000 }).toBe(503);
      expect((await get(r.port, '/ready')).body).toBe('');
      expect((await get(r.port, '/health')).status).toBe(200);
    } finally {
      await pgc.start();
    }
    await expect.poll(async () => (await get(r.port, '/ready')).status, { timeout: 15_000 }).toBe(200);

    const out = r.output();
    expect(out).toContain('STAND-IN');
    expect(out).toContain('NOT atomo-server');
    expect(out).not.toContain(JWT);
    expect(out).not.toContain(url);

    r.child.kill('SIGTERM');
    expect(await r.exited).toBe(0);
  });

  it('boots again on an already migrated database', async () => {
    const url = await pgc.database('standin_twice');
    const schemaPath = schemaFile();
    const first = await booted({ DATABASE_URL: url, ATOMO_SCHEMA_PATH: schemaPath });
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    const second = await booted({ DATABASE_URL: url, ATOMO_SCHEMA_PATH: schemaPath });
    expect((await get(second.port, '/ready')).status).toBe(200);
  });

  it('exits 0 when the watched schema file changes', async () => {
    const url = await pgc.database('standin_watch');
    const schemaPath = schemaFile();
    const r = await booted({ DATABASE_URL: url, ATOMO_SCHEMA_PATH: schemaPath, ATOMO_SCHEMA_WATCH: '1', ATOMO_SCHEMA_WATCH_INTERVAL: '1' });
    writeFileSync(schemaPath, SCHEMA + 'export interface Tag { id: string; }\n');
    expect(await r.exited).toBe(0);
  });

  it('keeps running while the watched file is missing, and exits once it comes back changed', async () => {
    const url = await pgc.database('standin_missing');
    const schemaPath = schemaFile();
    const r = await booted({ DATABASE_URL: url, ATOMO_SCHEMA_PATH: schemaPath, ATOMO_SCHEMA_WATCH: 'true', ATOMO_SCHEMA_WATCH_INTERVAL: '1' });
    unlinkSync(schemaPath);
    const before = await polls(r.port);
    expect(before).toBeGreaterThanOrEqual(0);
    // Two polls have seen the missing file.
    await expect.poll(() => polls(r.port), { timeout: 10_000 }).toBeGreaterThanOrEqual(before + 2);
    expect(r.child.exitCode).toBeNull();
    expect((await get(r.port, '/health')).status).toBe(200);
    writeFileSync(schemaPath, 'export interface Other { id: string; }\n');
    expect(await r.exited).toBe(0);
  });

  it.each([
    ['an unreadable schema', { ATOMO_SCHEMA_PATH: '/nonexistent/schema.ts' }, /cannot read the schema file/],
    ['a schema without interfaces', { SCHEMA_CONTENT: 'export const x = 1;\n' }, /exports no interface/],
    ['an unreachable database', { DATABASE_URL: 'UNREACHABLE' }, /cannot reach or migrate the database/],
    ['production without JWT_SECRET', { ATOMO_ENV: 'production' }, /JWT_SECRET is required/],
    ['STANDIN_FAIL_AT_BOOT=1', { STANDIN_FAIL_AT_BOOT: '1' }, /failing at boot on purpose/],
  ])('exits non-zero with %s', async (_name, overrides: Record<string, string>, message) => {
    const { SCHEMA_CONTENT, ...env } = overrides;
    if (env.DATABASE_URL === 'UNREACHABLE') env.DATABASE_URL = `postgres://postgres:pw@127.0.0.1:${await freePort()}/none`;
    const r = await run({
      DATABASE_URL: pgc.url,
      ATOMO_SCHEMA_PATH: schemaFile(SCHEMA_CONTENT ?? SCHEMA),
      ...env,
    });
    const code = await r.exited;
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(r.output()).toMatch(message);
    expect(r.output()).not.toMatch(/\n\s+at /); // no stack trace
  });
});
