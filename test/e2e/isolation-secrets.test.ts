// A project reads only its own secrets: a reference outside `<prefix>/<id>/` (another project's, the fleet's own)
// is refused by validation and never injected, unless fleet.yaml shares it; DATABASE_URL and JWT_SECRET are always
// the project's own generated values. Real git, Postgres, daemon and instance processes.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import { secretRefsOf } from '../../daemon/provision/project.ts';
import { isFleetError } from '../../daemon/core/errors.ts';
import { createFleet, type TestFleet } from '../harness/fleet.ts';
import { DEFAULT_FLEET_YAML, writeProject } from '../harness/git.ts';
import { processesOf } from '../harness/instances.ts';

let f: TestFleet;
const FLEET_YAML = `${DEFAULT_FLEET_YAML}sharedSecrets: [/atomo/shared/SENTRY_DSN]\n`;

/** The environment of the project's running instance process, read from /proc. */
function envOf(id: string): Record<string, string> {
  const [pid] = processesOf(f.stateDir, id);
  if (!pid) return {};
  const pairs = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean);
  return Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
}

beforeAll(async () => {
  f = await createFleet();
  f.repo.write('fleet.yaml', FLEET_YAML);
  writeProject(f.repo, 'beta');
  writeProject(f.repo, 'gamma', { manifest: { secrets: { SENTRY_DSN: '/atomo/shared/SENTRY_DSN', STRIPE_KEY: 'stripe' } } });
  const c = f.repo.commit('beta and gamma');
  await f.boot({ fleet: checkFleetConfig(FLEET_YAML).config! });
  await f.running!.secrets.put('/atomo/shared/SENTRY_DSN', 'https://sentry.example/1');
  await f.running!.secrets.put('/atomo/gamma/stripe', 'sk-gamma');
  await f.until('beta', (p) => p.status === 'running' && p.appliedCommit === c);
  await f.until('gamma', (p) => p.status === 'running' && p.appliedCommit === c);
});
afterAll(async () => f?.destroy());

it("a reference to another project's secret or the fleet's own is invalid, never injected; the others converge", async () => {
  const betaJwt = await f.running!.secrets.get('/atomo/beta/JWT_SECRET');
  writeProject(f.repo, 'alpha', { manifest: { secrets: { STOLEN: '/atomo/beta/JWT_SECRET' } } });
  writeProject(f.repo, 'delta', { manifest: { secrets: { ADMIN: '/atomo/fleet/POSTGRES_ADMIN_URL' } } });
  writeProject(f.repo, 'omega', { manifest: { secrets: { DATABASE_URL: '/atomo/beta/DATABASE_URL' } } });
  writeProject(f.repo, 'sigma', { manifest: { secrets: { UP: '../beta/JWT_SECRET' } } });
  writeProject(f.repo, 'kappa', { manifest: { env: { HELLO: 'world' } } });
  const c = f.repo.commit('alpha, delta, omega and sigma reach for other secrets; kappa is fine');
  await f.until('kappa', (p) => p.status === 'running' && p.appliedCommit === c);
  const invalid = await f.running!.daemon.registry.getState<{ projects: { id: string; issues: string[] }[] }>('invalid');
  const byId = new Map(invalid!.projects.map((p) => [p.id, p.issues.join('\n')]));
  expect(byId.get('alpha')).toMatch(/projects\/alpha\/project\.yaml:\d+:\d+: \/secrets\/STOLEN: .*\/atomo\/alpha\//);
  expect(byId.get('delta')).toMatch(/projects\/delta\/project\.yaml:\d+:\d+: \/secrets\/ADMIN/);
  expect(byId.get('omega')).toMatch(/projects\/omega\/project\.yaml:\d+:\d+: \/secrets\/DATABASE_URL/);
  expect(byId.get('sigma')).toMatch(/projects\/sigma\/project\.yaml:\d+:\d+: \/secrets\/UP/);
  for (const id of ['alpha', 'delta', 'omega', 'sigma']) {
    expect(await f.project(id)).toBeNull();
    expect(processesOf(f.stateDir, id)).toEqual([]);
  }
  // No process of the fleet carries beta's JWT secret but beta's own.
  expect(envOf('kappa').JWT_SECRET).not.toBe(betaJwt);
  expect(envOf('beta').JWT_SECRET).toBe(betaJwt);
});

it('a secret fleet.yaml shares is injected; DATABASE_URL and JWT_SECRET are the project\'s own', async () => {
  const env = envOf('gamma');
  expect(env.SENTRY_DSN).toBe('https://sentry.example/1');
  expect(env.STRIPE_KEY).toBe('sk-gamma');
  expect(env.DATABASE_URL).toBe(await f.running!.secrets.get('/atomo/gamma/DATABASE_URL'));
  expect(env.JWT_SECRET).toBe(await f.running!.secrets.get('/atomo/gamma/JWT_SECRET'));
});

it('the daemon refuses an out-of-scope reference at runtime too (a manifest that skipped validation)', () => {
  const manifest = { id: 'alpha', secrets: { STOLEN: '/atomo/beta/JWT_SECRET' } } as never;
  const err = (() => { try { secretRefsOf({ secretPrefix: '/atomo', sharedSecrets: [] }, manifest); } catch (e) { return e; } })();
  expect(isFleetError(err, 'SECRET_STORE')).toBe(true);
  expect((err as Error).message).toMatch(/\/atomo\/beta\/JWT_SECRET.*alpha/);
  const own = secretRefsOf({ secretPrefix: '/atomo', sharedSecrets: [] }, { id: 'alpha', secrets: { DATABASE_URL: 'other-url', JWT_SECRET: 'x' } } as never);
  expect(own).toMatchObject({ DATABASE_URL: '/atomo/alpha/DATABASE_URL', JWT_SECRET: '/atomo/alpha/JWT_SECRET' });
  expect(secretRefsOf({ secretPrefix: '/atomo', sharedSecrets: ['/atomo/shared/'] }, { id: 'alpha', secrets: { S: '/atomo/shared/X' } } as never).S).toBe('/atomo/shared/X');
});
