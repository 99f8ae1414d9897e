// The instance environment and restart hash at their edges: which keys the fleet owns, what restarts and what not.
import { describe, expect, it } from 'vitest';
import { FLEET_OWNED_ENV, instanceSpecHash, renderInstanceEnv } from '../daemon/core/instance-spec.ts';
import type { Manifest } from '../daemon/core/types.ts';

const base: Manifest = {
  id: 'blog', displayName: 'Blog', hostname: 'blog.example.com', aliases: [], state: 'running', schema: 'schema.ts',
  runtime: {}, env: {}, secrets: {}, resources: {},
};

describe('FLEET_OWNED_ENV', () => {
  it('names exactly the keys a manifest env cannot override', () => {
    const fleet = { DATABASE_URL: 'postgres://fleet', JWT_SECRET: 'fleet' };
    const input = { secrets: fleet, schemaPath: '/s/schema.ts', host: '127.0.0.1', port: 4100 };
    const keys = Object.keys(renderInstanceEnv({ manifest: base, ...input }));
    const manifestEnv = Object.fromEntries(keys.map((k) => [k, 'from-manifest']));
    const env = renderInstanceEnv({ manifest: { ...base, env: manifestEnv }, ...input });
    const kept = keys.filter((k) => env[k] !== 'from-manifest');
    expect([...kept].sort()).toEqual([...FLEET_OWNED_ENV].sort());
  });
});

describe('instanceSpecHash', () => {
  const hash = (m: Partial<Manifest> = {}, driver = 'process') =>
    instanceSpecHash({ manifest: { ...base, ...m }, schemaDigest: 'd1', port: 4100, secretsVersion: 0, driver });

  it('is 16 hex characters', () => {
    expect(hash()).toMatch(/^[0-9a-f]{16}$/);
  });

  it.each<[string, Partial<Manifest>, Partial<Manifest>]>([
    ['rls on vs off', { tenancy: { rls: true } }, { tenancy: { rls: false } }],
    ['cpus set', { resources: { cpus: 0.5 } }, {}],
    ['cpus changed', { resources: { cpus: 0.5 } }, { resources: { cpus: 1 } }],
    ['memory set', { resources: { memory: '256m' } }, {}],
    ['memory changed', { resources: { memory: '256m', cpus: 1 } }, { resources: { memory: '512m', cpus: 1 } }],
  ])('restarts on %s', (_name, a, b) => {
    expect(hash(a)).not.toBe(hash(b));
  });

  it('restarts on a driver change', () => {
    expect(hash({}, 'docker')).not.toBe(hash({}, 'process'));
  });

  it.each<[string, Partial<Manifest>, Partial<Manifest>]>([
    ['tenancy absent vs rls off', {}, { tenancy: { rls: false } }],
    ['the connection limit (applied to the database role, not the instance)', { resources: { connections: 5 } }, { resources: { connections: 50 } }],
    ['resources absent (an older registry row) vs empty', { resources: undefined as unknown as Manifest['resources'] }, { resources: {} }],
    ['env absent (an older registry row) vs empty', { env: undefined as unknown as Manifest['env'] }, { env: {} }],
  ])('does not restart on %s', (_name, a, b) => {
    expect(hash(a)).toBe(hash(b));
  });
});
