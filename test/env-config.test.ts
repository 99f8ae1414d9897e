// The daemon's and the CLI's own environment: read once, at the edge, into a frozen typed FleetEnv; and the one
// place that says where the registry is when no --registry is given.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnv, type FleetEnv } from '../daemon/config/env.ts';
import { isFleetError } from '../daemon/core/errors.ts';
import { registryUrlFor, stateDirFor } from '../daemon/postgres/resolve.ts';
import { freePort } from './harness/ports.ts';

const ROOT = resolve(import.meta.dirname, '..');
const FLEET = join(ROOT, 'scripts/fleet.js');

const DEFAULTS: FleetEnv = {
  repoUrl: undefined, registryUrl: undefined, postgresUrl: undefined, stateDir: undefined,
  httpPort: 8081, httpHost: undefined, interval: 5, portBase: undefined, pgPort: 54329, logLevel: 'info',
  secretStore: 'ssm', secretPrefix: '/atomo', branch: 'main', gitTokenSecret: undefined,
};

describe('readEnv', () => {
  it.each<{ name: string; env: Record<string, string>; expect: Partial<FleetEnv> }>([
    { name: 'nothing set: the defaults', env: {}, expect: {} },
    { name: 'empty values count as unset', env: { FLEET_HTTP_PORT: '', FLEET_PORT_BASE: '', FLEET_REGISTRY_URL: '', LOG_LEVEL: '' }, expect: {} },
    {
      name: 'every variable',
      env: {
        FLEET_REPO_URL: 'https://git.example.com/fleet.git', FLEET_REGISTRY_URL: 'postgres://r@db/fleet_registry',
        FLEET_POSTGRES_URL: 'postgres://a@db/postgres', FLEET_STATE_DIR: '/var/lib/fleet', FLEET_HTTP_PORT: '9000',
        FLEET_HTTP_HOST: '10.210.0.10', FLEET_INTERVAL: '2', FLEET_PORT_BASE: '5100', FLEET_PG_PORT: '5432',
        LOG_LEVEL: 'debug', FLEET_SECRET_STORE: 'local', FLEET_SECRET_PREFIX: '/acme', FLEET_BRANCH: 'release/1',
        FLEET_GIT_TOKEN_SECRET: '/acme/fleet/GIT_TOKEN',
      },
      expect: {
        repoUrl: 'https://git.example.com/fleet.git', registryUrl: 'postgres://r@db/fleet_registry',
        postgresUrl: 'postgres://a@db/postgres', stateDir: '/var/lib/fleet', httpPort: 9000, httpHost: '10.210.0.10',
        interval: 2, portBase: 5100, pgPort: 5432, logLevel: 'debug', secretStore: 'local', secretPrefix: '/acme',
        branch: 'release/1', gitTokenSecret: '/acme/fleet/GIT_TOKEN',
      },
    },
    { name: 'HTTP port 0 picks a free port', env: { FLEET_HTTP_PORT: '0' }, expect: { httpPort: 0 } },
    { name: 'fractional interval', env: { FLEET_INTERVAL: '0.3' }, expect: { interval: 0.3 } },
    { name: 'concurrency and health interval', env: { FLEET_CONCURRENCY: '16', FLEET_HEALTH_INTERVAL: '2.5' }, expect: { concurrency: 16, healthInterval: 2.5 } },
    { name: 'port bounds', env: { FLEET_PORT_BASE: '65535', FLEET_PG_PORT: '1', FLEET_HTTP_PORT: '65535' }, expect: { portBase: 65535, pgPort: 1, httpPort: 65535 } },
    { name: 'other variables are ignored', env: { PATH: '/bin', FLEET_DEBUG: '1', HOME: '/root' }, expect: {} },
  ])('$name', (c) => {
    const env = readEnv(c.env);
    expect(env).toEqual({ ...DEFAULTS, ...c.expect });
    expect(Object.isFrozen(env)).toBe(true);
  });

  it.each<[string, string, RegExp]>([
    ['FLEET_HTTP_PORT', 'abc', /port number/],
    ['FLEET_HTTP_PORT', '65536', /port number/],
    ['FLEET_HTTP_PORT', '80.5', /port number/],
    ['FLEET_HTTP_PORT', '-1', /port number/],
    ['FLEET_HTTP_PORT', ' 8081', /port number/],
    ['FLEET_HTTP_PORT', '0x50', /port number/],
    ['FLEET_PORT_BASE', '70000', /port number \(1-65535\)/],
    ['FLEET_PORT_BASE', '0', /port number \(1-65535\)/],
    ['FLEET_PG_PORT', '0', /port number \(1-65535\)/],
    ['FLEET_PG_PORT', 'postgres', /port number \(1-65535\)/],
    ['FLEET_INTERVAL', '-1', /seconds/],
    ['FLEET_INTERVAL', '0', /seconds/],
    ['FLEET_INTERVAL', 'five', /seconds/],
    ['FLEET_INTERVAL', 'Infinity', /seconds/],
    ['FLEET_CONCURRENCY', '0', /1 to 64/],
    ['FLEET_CONCURRENCY', '65', /1 to 64/],
    ['FLEET_CONCURRENCY', '2.5', /1 to 64/],
    ['FLEET_HEALTH_INTERVAL', '0', /seconds/],
    ['LOG_LEVEL', 'loud', /trace, debug, info, warn, error, fatal, silent/],
    ['FLEET_SECRET_STORE', 'vault', /local or ssm/],
    ['FLEET_SECRET_PREFIX', 'atomo', /absolute parameter path/],
    ['FLEET_BRANCH', 'bad..name', /branch/],
  ])('%s=%s is a usage error naming the variable and what it takes', (name, value, expected) => {
    let caught: unknown;
    try {
      readEnv({ [name]: value });
    } catch (err) {
      caught = err;
    }
    expect(isFleetError(caught, 'USAGE')).toBe(true);
    const message = (caught as Error).message;
    expect(message).toContain(`${name}=${value.trim() === value ? value : JSON.stringify(value)}`);
    expect(message).toMatch(/expected /);
    expect(message).toMatch(expected);
  });

  it('reads process.env by default', () => {
    const before = process.env.FLEET_BRANCH;
    process.env.FLEET_BRANCH = 'from-process-env';
    try {
      expect(readEnv().branch).toBe('from-process-env');
    } finally {
      if (before === undefined) delete process.env.FLEET_BRANCH;
      else process.env.FLEET_BRANCH = before;
    }
  });
});

describe('stateDirFor and registryUrlFor: flag, then environment, then the embedded registry, else a usage error', () => {
  let dir: string;
  let pgPort: number;
  function repo(name: string, fleetYaml?: string): string {
    const r = join(dir, name);
    mkdirSync(r, { recursive: true });
    if (fleetYaml !== undefined) writeFileSync(join(r, 'fleet.yaml'), fleetYaml);
    return r;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-env-'));
    pgPort = await freePort();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the state dir: flag, FLEET_STATE_DIR, <repo>/.fleet', () => {
    expect(stateDirFor('/r', readEnv({ FLEET_STATE_DIR: '/env' }), '/flag')).toBe('/flag');
    expect(stateDirFor('/r', readEnv({ FLEET_STATE_DIR: '/env' }))).toBe('/env');
    expect(stateDirFor('/r', readEnv({}))).toBe('/r/.fleet');
    expect(stateDirFor('r', readEnv({}))).toBe(resolve('r/.fleet'));
  });

  it('a --registry flag wins over FLEET_REGISTRY_URL, which wins over the embedded registry', async () => {
    const r = repo('flag', 'driver: process\n');
    const env = readEnv({ FLEET_REGISTRY_URL: 'postgres://env@db/fleet_registry', FLEET_PG_PORT: String(pgPort) });
    expect(await registryUrlFor(r, 'postgres://flag@db/fleet_registry', env)).toBe('postgres://flag@db/fleet_registry');
    expect(await registryUrlFor(r, undefined, env)).toBe('postgres://env@db/fleet_registry');
  });

  it('postgres.admin: embedded finds the registry through the state dir and FLEET_PG_PORT', async () => {
    const r = repo('embedded', 'postgres: { admin: embedded }\n');
    const state = join(dir, 'embedded-state');
    mkdirSync(state, { recursive: true });
    writeFileSync(join(state, 'pg-superuser-password'), 's3cret\n');
    const env = readEnv({ FLEET_STATE_DIR: state, FLEET_PG_PORT: String(pgPort) });
    expect(await registryUrlFor(r, undefined, env)).toBe(`postgres://postgres:s3cret@127.0.0.1:${pgPort}/fleet_registry`);
    // An explicit state dir (fleet secrets --state-dir) wins over FLEET_STATE_DIR.
    expect(await registryUrlFor(r, undefined, env, { stateDir: join(dir, 'elsewhere') }))
      .toBe(`postgres://postgres:postgres@127.0.0.1:${pgPort}/fleet_registry`);
  });

  it.each([
    ['fleet.yaml names an admin URL secret', 'postgres: { admin: /atomo/fleet/POSTGRES_ADMIN_URL }\n'],
    ['there is no fleet.yaml', undefined],
  ])('a usage error when %s', async (name, yaml) => {
    const r = repo(name.replace(/\W+/g, '-'), yaml);
    const err = await registryUrlFor(r, undefined, readEnv({})).catch((e) => e);
    expect(isFleetError(err, 'USAGE')).toBe(true);
    expect(err.message).toContain('pass --registry URL or set FLEET_REGISTRY_URL');
  });
});

function run(args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile('node', [FLEET, ...args], { cwd, env: { ...process.env, FLEET_DEBUG: '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('every command reads its environment through readEnv, before doing anything', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-env-cli-'));
    writeFileSync(join(dir, 'fleet.yaml'), 'postgres: { admin: embedded }\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each<[string, string[], Record<string, string>, string]>([
    ['daemon', ['daemon'], { FLEET_HTTP_PORT: 'abc' }, 'FLEET_HTTP_PORT=abc'],
    ['daemon', ['daemon'], { FLEET_INTERVAL: '-1' }, 'FLEET_INTERVAL=-1'],
    ['daemon', ['daemon'], { FLEET_PORT_BASE: '70000' }, 'FLEET_PORT_BASE=70000'],
    ['daemon', ['daemon', '--http-port', 'abc'], {}, '--http-port=abc'],
    ['daemon', ['daemon', '--interval', '0'], {}, '--interval=0'],
    ['status', ['status'], { FLEET_PG_PORT: '0' }, 'FLEET_PG_PORT=0'],
    ['plan', ['plan', '--against-registry'], { FLEET_PG_PORT: '0' }, 'FLEET_PG_PORT=0'],
    ['secrets', ['secrets', 'rotate', 'blog', 'JWT_SECRET'], { FLEET_PG_PORT: '0' }, 'FLEET_PG_PORT=0'],
  ])('fleet %s with %j %j: a usage error naming it', async (name, args, env, named) => {
    const state = mkdtempSync(join(dir, 'state-'));
    // The daemon gets a folder without fleet.yaml: should it get past its environment, it stops there (no Postgres).
    const repoDir = name === 'daemon' ? mkdtempSync(join(dir, 'empty-')) : dir;
    const r = await run([...args, '--repo', repoDir, ...(name === 'daemon' ? ['--no-gateway'] : [])], repoDir, { FLEET_STATE_DIR: state, ...env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(named);
    expect(r.stderr).toContain('expected ');
    expect(r.stderr).toContain('[USAGE]');
    expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
  });

  it('no registry anywhere: the same usage error from status and plan', async () => {
    const bare = mkdtempSync(join(dir, 'bare-'));
    writeFileSync(join(bare, 'fleet.yaml'), 'postgres: { admin: /atomo/fleet/POSTGRES_ADMIN_URL }\n');
    const env = { FLEET_REGISTRY_URL: '' };
    const status = await run(['status', '--repo', bare], bare, env);
    const plan = await run(['plan', '--against-registry', '--repo', bare], bare, env);
    for (const r of [status, plan]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('pass --registry URL or set FLEET_REGISTRY_URL');
      expect(r.stderr).toContain('[USAGE]');
    }
  });
});

describe('the FLEET_* environment is read in one file', () => {
  function sources(folder: string): string[] {
    return readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && /\.(ts|mjs|js)$/.test(e.name))
      .map((e) => relative(ROOT, join(e.parentPath, e.name)));
  }
  const files = [...sources('daemon'), ...sources('scripts')].filter((f) => f !== 'daemon/dev/standin.mjs');

  it('only daemon/config/env.ts reads FLEET_* or LOG_LEVEL variables', () => {
    const readers = files.filter((f) => /\.(FLEET_[A-Z_]+|LOG_LEVEL)\b|\[['"`](FLEET_[A-Z_]+|LOG_LEVEL)['"`]\]/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(readers).toEqual(['daemon/config/env.ts']);
  });

  it('each command reads it at most once', () => {
    for (const f of files.filter((f) => f.startsWith('scripts/commands/'))) {
      expect(readFileSync(join(ROOT, f), 'utf8').match(/\breadEnv\(/g)?.length ?? 0, f).toBeLessThanOrEqual(1);
    }
  });
});
