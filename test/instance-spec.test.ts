// The instance environment (the atomo-server contract) and the restart hash: pure, table-tested.
import { describe, expect, it } from 'vitest';
import { instanceSpecHash, renderInstanceEnv } from '../daemon/core/instance-spec.ts';
import { Backoff } from '../daemon/core/backoff.ts';
import type { Manifest } from '../daemon/core/types.ts';

const base: Manifest = {
  id: 'blog', displayName: 'Blog', hostname: 'blog.example.com', aliases: [], state: 'running', schema: 'schema.ts',
  runtime: { image: 'atomo:1' }, env: { CORS_ORIGINS: '*' }, secrets: {}, resources: { memory: '256m' },
};
const env = (m: Partial<Manifest> = {}) => renderInstanceEnv({
  manifest: { ...base, ...m }, secrets: { DATABASE_URL: 'postgres://u:p@h/db', JWT_SECRET: 'j' }, schemaPath: '/s/schema.ts', host: '127.0.0.1', port: 4100,
});

describe('renderInstanceEnv', () => {
  it('sets the contract environment', () => {
    expect(env()).toEqual({
      ATOMO_ENV: 'production', ATOMO_SCHEMA_WATCH: 'true', LOG_FORMAT: 'json', CORS_ORIGINS: '*',
      DATABASE_URL: 'postgres://u:p@h/db', JWT_SECRET: 'j', ATOMO_SCHEMA_PATH: '/s/schema.ts', HOST: '127.0.0.1',
      PORT: '4100', ATOMO_PROJECT_ID: 'blog',
    });
  });

  it.each([
    ['ATOMO_ENV', 'development', 'development'],
    ['ATOMO_SCHEMA_WATCH', 'false', 'false'],
    ['PORT', '9999', '4100'],
    ['HOST', '0.0.0.0', '127.0.0.1'],
    ['ATOMO_PROJECT_ID', 'shop', 'blog'],
    ['ATOMO_SCHEMA_PATH', '/etc/passwd', '/s/schema.ts'],
  ])('manifest env %s=%s gives %s (the fleet owns where the instance listens, what it is and reads)', (key, value, want) => {
    expect(env({ env: { [key]: value } })[key]).toBe(want);
  });

  it('tenancy.rls turns on row-level security', () => {
    expect(env({ tenancy: { rls: true } }).ATOMO_ENABLE_RLS).toBe('true');
    expect(env().ATOMO_ENABLE_RLS).toBeUndefined();
  });
});

describe('instanceSpecHash', () => {
  const hash = (m: Partial<Manifest> = {}, over: Partial<{ schemaDigest: string; port: number; secretsVersion: number }> = {}) =>
    instanceSpecHash({ manifest: { ...base, ...m }, schemaDigest: 'd1', port: 4100, secretsVersion: 0, driver: 'process', ...over });

  it.each([
    ['env', { env: { CORS_ORIGINS: 'https://x' } }, {}],
    ['runtime image', { runtime: { image: 'atomo:2' } }, {}],
    ['resources', { resources: { memory: '512m' } }, {}],
    ['a secret reference', { secrets: { STRIPE: 'stripe' } }, {}],
    ['row-level security', { tenancy: { rls: true } }, {}],
    ['schema content', {}, { schemaDigest: 'd2' }],
    ['a rotated secret', {}, { secretsVersion: 1 }],
    ['the port', {}, { port: 4101 }],
  ] as const)('changes with %s (restart)', (_name, m, over) => {
    expect(hash(m as Partial<Manifest>, over)).not.toBe(hash());
  });

  it('leaves the hash of a project without placement as it was before placement existed', () => {
    // Pinned: every instance running before swarm placement came would otherwise restart on the upgrade.
    expect(hash()).toBe(hash({ placement: undefined }));
    const swarm = (placement?: Manifest['placement']) =>
      instanceSpecHash({ manifest: { ...base, placement }, schemaDigest: 'd1', port: 4100, secretsVersion: 0, driver: 'swarm' });
    expect(swarm({ constraints: ['node.role==worker'] })).not.toBe(swarm({ constraints: ['node.role==manager'] }));
    expect(swarm({ constraints: ['node.labels.tier==hot'] })).not.toBe(swarm());
    // Only swarm places instances: elsewhere a placement edit must not restart anything.
    expect(hash({ placement: { constraints: ['node.labels.tier==hot'] } })).toBe(hash());
  });

  it('does not depend on the order of env keys', () => {
    expect(hash({ env: { A: '1', B: '2' } })).toBe(hash({ env: { B: '2', A: '1' } }));
  });

  it.each([
    ['display name', { displayName: 'Blog 2' }],
    ['hostname', { hostname: 'news.example.com' }],
    ['aliases', { aliases: ['www.blog.example.com'] }],
    ['edge policy', { edge: { maxBodyBytes: 10 } }],
  ] as const)('does not change with %s (gateway only, no restart)', (_name, m) => {
    expect(hash(m as Partial<Manifest>)).toBe(hash());
  });
});

describe('Backoff', () => {
  const opts = { baseMs: 1000, capMs: 4000, stallAfter: 3, stableMs: 10_000 };

  it('starts at once the first time and after an exit with code 0, without counting a crash', () => {
    const b = new Backoff(opts);
    expect(b.decide('a', undefined, 0)).toEqual({ start: true });
    b.started('a', 0);
    expect(b.decide('a', 0, 100)).toEqual({ start: true });
    expect(b.failures('a')).toBe(0);
  });

  it('waits 1 s, 2 s, 4 s, 4 s after consecutive crashes, and reports Stalled from the third', () => {
    const b = new Backoff(opts);
    let now = 0;
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      b.started('a', now);
      const d = b.decide('a', 1, now);
      expect(d.start).toBe(false);
      waits.push((d as { waitMs: number }).waitMs);
      now += (d as { waitMs: number }).waitMs;
      expect(b.decide('a', 1, now)).toEqual({ start: true });
    }
    expect(waits).toEqual([1000, 2000, 4000, 4000]);
    expect(b.stalled('a')).toBe(true);
  });

  it('forgives crashes once an instance stayed healthy long enough', () => {
    const b = new Backoff(opts);
    b.started('a', 0);
    b.decide('a', 1, 0);
    b.started('a', 1000);
    b.healthy('a', 5000);
    expect(b.failures('a')).toBe(1);
    b.healthy('a', 11_000);
    expect(b.failures('a')).toBe(0);
  });
});

describe('instanceSpecHash is a canonical identity', () => {
  const h = (m: Manifest) => instanceSpecHash({ manifest: m, schemaDigest: 'd', port: 4100, secretsVersion: 1, driver: 'process' });
  it.each([
    ['runtime keys reordered (jsonb)', { runtime: { version: '1', image: 'a:1', command: ['x'] } }, { runtime: { command: ['x'], image: 'a:1', version: '1' } }],
    ['resources keys reordered (jsonb)', { resources: { memory: '256m', cpus: 0.5 } }, { resources: { cpus: 0.5, memory: '256m' } }],
    ['env keys reordered', { env: { B: '2', A: '1' } }, { env: { A: '1', B: '2' } }],
    ['connections changed (a role setting, not the instance)', { resources: { memory: '256m', connections: 20 } }, { resources: { memory: '256m', connections: 50 } }],
    ['hostname changed (gateway only)', { hostname: 'a.example.com' }, { hostname: 'b.example.com' }],
  ])('unchanged: %s', (_name, a, b) => {
    expect(h({ ...base, ...(a as Partial<Manifest>) })).toBe(h({ ...base, ...(b as Partial<Manifest>) }));
  });
  it.each([
    ['runtime.version', { runtime: { version: '1' } }, { runtime: { version: '2' } }],
    ['resources.cpus', { resources: { cpus: 0.5 } }, { resources: { cpus: 1 } }],
    ['env value', { env: { A: '1' } }, { env: { A: '2' } }],
  ])('changed: %s', (_name, a, b) => {
    expect(h({ ...base, ...(a as Partial<Manifest>) })).not.toBe(h({ ...base, ...(b as Partial<Manifest>) }));
  });
});
