// The Caddy renderer at its edges: TLS choices, the safe-integer backstop, error messages, address spellings.
import { describe, expect, it } from 'vitest';
import { adminListen, isLocalName, renderCaddyConfig, renderGateway } from '../daemon/gateway/render.ts';
import type { FleetConfig, Manifest, RegistryRow } from '../daemon/core/types.ts';
import { thrown } from './harness/errors.ts';

function manifest(id: string, over: Partial<Manifest> = {}): Manifest {
  return {
    id, displayName: id, hostname: `${id}.example.com`, aliases: [], state: 'running', schema: 'schema.ts',
    runtime: {}, env: {}, secrets: {}, resources: {}, ...over,
  };
}

function row(id: string, over: Partial<RegistryRow> = {}): RegistryRow {
  return {
    id, displayName: id, hostname: `${id}.example.com`, aliases: [], status: 'running', desiredState: 'running',
    upstream: '127.0.0.1:4100', schemaVersion: null, schemaDigest: null, observedCommit: null, appliedCommit: null,
    lastHealth: null, conditions: [], manifest: manifest(id), secretRefs: {}, port: null, updatedAt: '2026-01-01T00:00:00Z',
    ...over,
  };
}

const gw: FleetConfig['gateway'] = { admin: '127.0.0.1:2019', listen: ':8080', tls: 'off', policies: {} };


const tlsOf = (rows: RegistryRow[], over: Partial<FleetConfig['gateway']>) => (renderCaddyConfig(rows, { ...gw, ...over }) as any).apps.tls;

describe('TLS automation policies', () => {
  it.each<[string, RegistryRow[], Partial<FleetConfig['gateway']>, unknown]>([
    ['internal CA, no projects: no certificates, one policy without subjects', [], { tls: 'internal' },
      { automation: { policies: [{ issuers: [{ module: 'internal' }] }] } }],
    ['internal CA: local names are not split off, and no ACME email', [row('a', { hostname: 'a.localhost' }), row('b')],
      { tls: 'internal', acmeEmail: 'ops@example.com' },
      { certificates: { automate: ['a.localhost', 'b.example.com'] },
        automation: { policies: [{ subjects: ['a.localhost', 'b.example.com'], issuers: [{ module: 'internal' }] }] } }],
    ['ACME without an email', [row('a')], { tls: 'acme' },
      { certificates: { automate: ['a.example.com'] },
        automation: { policies: [{ subjects: ['a.example.com'], issuers: [{ module: 'acme' }] }] } }],
    ['ACME with only local names: no public policy subjects', [row('a', { hostname: 'a.test' })], { tls: 'acme', acmeEmail: 'ops@example.com' },
      { certificates: { automate: ['a.test'] },
        automation: { policies: [
          { subjects: ['a.test'], issuers: [{ module: 'internal' }] },
          { issuers: [{ module: 'acme', email: 'ops@example.com' }] },
        ] } }],
  ])('%s', (_name, rows, over, want) => {
    expect(tlsOf(rows, over)).toEqual(want);
  });

  it('tls off: no tls app, automatic HTTPS disabled', () => {
    const cfg = renderCaddyConfig([row('a')], { ...gw, acmeEmail: 'ops@example.com' }) as any;
    expect(cfg.apps.tls).toBeUndefined();
    expect(cfg.apps.http.servers.atomo.automatic_https).toEqual({ disable: true });
  });
});

describe('the safe-integer backstop', () => {
  // A value validation never saw (an older registry, a hand edit) lands as a number where Caddy expects a string.
  it.each<[string, Partial<FleetConfig['gateway']>, string]>([
    ['the listen address', { listen: 2 ** 53 as unknown as string }, `${2 ** 53} at /apps/http/servers/atomo/listen/0`],
    ['a fractional number', { listen: 8080.5 as unknown as string }, '8080.5 at /apps/http/servers/atomo/listen/0'],
    ['the ACME email, past the routes', { tls: 'acme', acmeEmail: 1e20 as unknown as string },
      '100000000000000000000 at /apps/tls/automation/policies/0/issuers/0/email'],
  ])('refuses an unsafe number in %s, naming where it is', (_name, over, where) => {
    const err = thrown(() => renderCaddyConfig([row('a')], { ...gw, ...over }));
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'INVALID_CONFIG', message: `the gateway config would hold ${where}, not a safe integer`,
    });
  });

  it('lets a safe integer through', () => {
    const cfg = renderCaddyConfig([row('a')], { ...gw, listen: 8080 as unknown as string }) as any;
    expect(cfg.apps.http.servers.atomo.listen).toEqual([8080]);
  });
});

describe('policy errors', () => {
  const withEdge = (id: string, edge: Manifest['edge']) => row(id, { manifest: manifest(id, { edge }) });

  it('renderCaddyConfig names the project and its problem', () => {
    const err = thrown(() => renderCaddyConfig([row('a'), withEdge('bad', { maxBodyBytes: -1 })], gw));
    expect({ code: err.code, project: err.project, message: err.message }).toEqual({
      code: 'INVALID_CONFIG', project: 'bad',
      message: 'project bad: edge.maxBodyBytes must be a whole number of bytes from 0 to 9007199254740991, got -1',
    });
  });

  it('renderCaddyConfig blames the project that inherits a bad fleet value', () => {
    const err = thrown(() => renderCaddyConfig([row('a')], { ...gw, policies: { maxBodyBytes: 0.5 } }));
    expect({ code: err.code, project: err.project, message: err.message }).toEqual({
      code: 'INVALID_CONFIG', project: 'a',
      message: 'project a: edge.maxBodyBytes must be a whole number of bytes from 0 to 9007199254740991, got 0.5',
    });
  });

  it('renderGateway names the fleet setting for a bad fleet value', () => {
    const err = thrown(() => renderGateway([], { ...gw, policies: { maxBodyBytes: -3 } }));
    expect(err.message).toBe('fleet.yaml gateway.policies.maxBodyBytes must be a whole number of bytes from 0 to 9007199254740991, got -3');
  });

  it('renderGateway drops every project sharing a bad policy, each with the message', () => {
    const { dropped } = renderGateway([withEdge('b', { maxBodyBytes: -1 }), row('ok'), withEdge('a', { maxBodyBytes: -1 })], gw);
    const message = 'edge.maxBodyBytes must be a whole number of bytes from 0 to 9007199254740991, got -1';
    expect(dropped).toEqual([{ id: 'a', message }, { id: 'b', message }]);
  });

  it('renderGateway keeps a project whose own value overrides the fleet value', () => {
    const { dropped } = renderGateway([withEdge('a', { maxBodyBytes: 10 })], { ...gw, policies: { maxBodyBytes: 20 } });
    expect(dropped).toEqual([]);
  });
});

describe('addresses', () => {
  it.each([
    ['unix:/run/caddy/admin.sock', 'unix//run/caddy/admin.sock'],
    // Only leading slashes are folded: the rest of a socket path is Caddy's to read.
    ['unix:run//admin.sock', 'unix/run//admin.sock'],
    ['http://caddy:2019//', 'caddy:2019'],
    ['https://caddy:2019', 'caddy:2019'],
    ['caddy:2019/', 'caddy:2019'],
  ])('adminListen(%j) → %j', (input, want) => {
    expect(adminListen(input)).toBe(want);
  });

  it.each<[string, boolean]>([
    ['10.0.0.1', true],
    ['::1', true],
    ['printer.home.arpa', true],
    ['shop.example', true],
    ['x.invalid', true],
    ['box.local', true],
    ['1.2.3.4.nip.io', false],
    ['localhost.example.com', false],
    ['mylocalhost', false],
  ])('isLocalName(%s) = %s', (host, local) => {
    expect(isLocalName(host)).toBe(local);
  });
});
