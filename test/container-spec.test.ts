// Golden tests for the pure container renderer: what the Docker driver sends to the engine.
import { describe, expect, it } from 'vitest';
import { containerName, parseMemory, renderContainer, DEFAULT_SCHEMA_MOUNT } from '../daemon/drivers/container-spec.ts';
import { isFleetError } from '../daemon/core/errors.ts';
import type { InstanceSpec } from '../daemon/core/types.ts';

const SECRET = 's3cr3t-jwt-value-never-in-labels';

function spec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    id: 'acme',
    commit: '3f2c1a9d0b7e4c5a6f8e9d0c1b2a3f4e5d6c7b8a',
    image: 'ghcr.io/atomo-cc/atomo-server:0.4.2',
    env: { ATOMO_ENV: 'production', JWT_SECRET: SECRET, DATABASE_URL: `postgresql://acme:${SECRET}@postgres:5432/atomo_acme` },
    schemaPath: '/var/lib/fleet/schemas/acme/schema.ts',
    port: 3000,
    resources: { memory: '256m', cpus: 0.5 },
    specHash: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
    logDir: '/var/lib/fleet/logs/acme',
    ...over,
  };
}

const cases: { name: string; spec: InstanceSpec; opts: { network: string; publishHost?: string } }[] = [
  { name: 'production', spec: spec(), opts: { network: 'fleet' } },
  { name: 'published-loopback', spec: spec({ resources: { memory: '1g' } }), opts: { network: 'fleet-test', publishHost: '127.0.0.1' } },
  { name: 'host-network', spec: spec({ id: 'local' }), opts: { network: 'host', publishHost: '127.0.0.1' } },
  { name: 'no-limits-custom-port', spec: spec({ id: 'blog', port: 8080, resources: {}, env: {} }), opts: { network: 'fleet' } },
];

describe('renderContainer', () => {
  it.each(cases)('$name matches its golden file', async ({ name, spec: s, opts }) => {
    const body = renderContainer(s, { ...opts, schemaMount: DEFAULT_SCHEMA_MOUNT });
    await expect(JSON.stringify(body, null, 2) + '\n').toMatchFileSnapshot(`./__snapshots__/container-spec/${name}.json`);
  });

  it.each(cases)('$name: labels and name never carry a secret value', ({ spec: s, opts }) => {
    const body = renderContainer(s, { ...opts, schemaMount: DEFAULT_SCHEMA_MOUNT });
    expect(JSON.stringify(body.Labels)).not.toContain(SECRET);
    expect(body.name).not.toContain(SECRET);
    expect(body.name).toBe(containerName(s));
  });

  it('names the container fleet-<id>-<first 8 of the spec hash>', () => {
    expect(containerName(spec())).toBe('fleet-acme-a1b2c3d4');
  });

  it('publishes only on the given host address, with an ephemeral host port', () => {
    const body = renderContainer(spec(), { network: 'n', publishHost: '127.0.0.1', schemaMount: '/app/schema.ts' });
    expect(body.HostConfig.PortBindings).toEqual({ '3000/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
    expect(renderContainer(spec(), { network: 'n', schemaMount: '/app/schema.ts' }).HostConfig.PortBindings).toBeUndefined();
  });

  it.each(['0.0.0.0', '::'])('refuses to publish on all interfaces (%s)', (host) => {
    expect(() => renderContainer(spec(), { network: 'n', publishHost: host, schemaMount: '/app/schema.ts' })).toThrow(/all interfaces/);
  });

  it('contract variables win over manifest env', () => {
    const body = renderContainer(spec({ env: { PORT: '1', HOST: '::1', ATOMO_SCHEMA_PATH: '/x' } }), { network: 'n', schemaMount: '/app/schema.ts' });
    expect(body.Env).toEqual(expect.arrayContaining(['PORT=3000', 'HOST=0.0.0.0', 'ATOMO_SCHEMA_PATH=/app/schema.ts', 'ATOMO_PROJECT_ID=acme']));
    expect(body.Env.filter((e) => e.startsWith('PORT='))).toHaveLength(1);
  });

  it('a spec without image is an INVALID_MANIFEST error naming the file and field', () => {
    let err: unknown;
    try {
      renderContainer(spec({ image: undefined }), { network: 'n', schemaMount: '/app/schema.ts' });
    } catch (e) {
      err = e;
    }
    expect(isFleetError(err, 'INVALID_MANIFEST')).toBe(true);
    expect((err as Error).message).toMatch(/^projects\/acme\/project\.yaml: \/runtime\/image: /);
  });
});

describe('parseMemory', () => {
  it.each([
    ['256m', 268435456],
    ['1g', 1073741824],
    ['1G', 1073741824],
    ['8192k', 8388608],
    ['1.5g', 1610612736],
    ['300mb', 314572800],
    ['268435456', 268435456],
  ] as const)('%s → %d bytes', (value, bytes) => {
    expect(parseMemory(value, 'acme')).toBe(bytes);
  });

  it.each(['', 'lots', '-1g', '1t', '12 parsecs', '1m', '512k'])('rejects %j with a message naming the field', (value) => {
    expect(() => parseMemory(value, 'acme')).toThrow(/projects\/acme\/project\.yaml: \/resources\/memory: .*e\.g\. "256m"/);
  });
});
