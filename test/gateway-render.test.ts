// The Caddy renderer and its pure helpers: golden files for whole configs, tables for the small rules.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFleetError } from '../daemon/core/errors.ts';
import { dialAddress, effectivePolicy, hostTable, normalizeHost, rowRoute } from '../daemon/gateway/hosts.ts';
import { isAllowedHost, permissionResponse } from '../daemon/gateway/permission.ts';
import { escapeRegex, greaterThanRegex } from '../daemon/gateway/regex.ts';
import { adminListen, isLocalName, renderCaddyConfig, renderGateway } from '../daemon/gateway/render.ts';
import type { FleetConfig, Manifest, RegistryRow } from '../daemon/core/types.ts';

function manifest(id: string, over: Partial<Manifest> = {}): Manifest {
  return {
    id,
    displayName: id,
    hostname: `${id}.example.com`,
    aliases: [],
    state: 'running',
    schema: 'schema.ts',
    runtime: {},
    env: { FEATURE: 'on' },
    secrets: { JWT_SECRET: 'JWT_SECRET' },
    resources: {},
    ...over,
  };
}

function row(id: string, over: Partial<RegistryRow> = {}): RegistryRow {
  return {
    id,
    displayName: id,
    hostname: `${id}.example.com`,
    aliases: [],
    status: 'running',
    desiredState: 'running',
    upstream: `127.0.0.1:41${id.length}0`,
    schemaVersion: 'abc123',
    schemaDigest: 'sha256:00',
    observedCommit: 'abc123',
    appliedCommit: 'abc123',
    lastHealth: { ok: true, status: 200, at: '2026-01-01T00:00:00Z' },
    conditions: [],
    manifest: manifest(id),
    secretRefs: { JWT_SECRET: '/atomo/' + id + '/JWT_SECRET' },
    port: null,
    updatedAt: '2026-01-01T00:00:00Z',
    ...over,
  };
}

const gw: FleetConfig['gateway'] = { admin: '127.0.0.1:2019', listen: ':8080', tls: 'off', policies: {} };

/** Go's regexp syntax as rendered for Caddy, in JavaScript: `(?i:abc)` (no inline flags in V8 11) becomes `(?:[aA][bB][cC])`. */
function jsRegex(go: string): RegExp {
  return new RegExp(go.replace(/\(\?i:((?:\\.|[^)\\])*)\)/g, (_m, body: string) =>
    `(?:${body.replace(/\\.|[a-zA-Z]/g, (c) => (c.length === 1 ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c))})`));
}

async function golden(name: string, cfg: object) {
  await expect(JSON.stringify(cfg, null, 2) + '\n').toMatchFileSnapshot(`./__snapshots__/gateway/${name}.json`);
}

describe('renderCaddyConfig golden files', () => {
  it('empty fleet: admin, one server, only the uniform 404', async () => {
    await golden('empty', renderCaddyConfig([], gw));
  });

  it('two projects with aliases', async () => {
    const rows = [
      row('beta', { aliases: ['beta.example.org'] }),
      row('alpha', { aliases: ['www.alpha.example.com', 'Alpha.Example.NET.'], upstream: 'http://127.0.0.1:4100' }),
    ];
    await golden('two-projects', renderCaddyConfig(rows, gw));
  });

  it('stopped, unhealthy, provisioning, failed, removed and deleted projects', async () => {
    const rows = [
      row('stopped', { status: 'stopped', desiredState: 'stopped', upstream: null, manifest: manifest('stopped', { state: 'stopped' }) }),
      row('unhealthy', { lastHealth: { ok: false, error: 'ECONNREFUSED', at: '2026-01-01T00:00:00Z' } }),
      row('provisioning', { status: 'provisioning', upstream: null }),
      row('failed', { status: 'failed' }),
      row('removed', { status: 'stopped', desiredState: 'stopped', manifest: null }),
      row('deleted', { status: 'deleted' }),
    ];
    await golden('not-running', renderCaddyConfig(rows, gw));
  });

  it.each([
    ['tls-internal', { tls: 'internal', listen: ':8443' }, {}],
    ['tls-acme', { tls: 'acme', acmeEmail: 'ops@example.com' }, {}],
    ['tls-on-demand', { tls: 'acme', acmeEmail: 'ops@example.com', onDemandTls: true }, { permissionUrl: 'http://127.0.0.1:7070/gateway/allow' }],
  ] as const)('%s', async (name, over, opts) => {
    const rows = [row('alpha', { aliases: ['www.alpha.example.com'] }), row('beta')];
    await golden(name, renderCaddyConfig(rows, { ...gw, ...over }, opts));
  });

  it('tls-acme with local names: those get the internal CA, real names ACME', async () => {
    const rows = [row('alpha', { aliases: ['alpha.localhost'] }), row('beta', { hostname: 'beta.test' })];
    const cfg = renderCaddyConfig(rows, { ...gw, tls: 'acme', acmeEmail: 'ops@example.com' }) as any;
    const policies = cfg.apps.tls.automation.policies;
    expect(policies).toEqual([
      { subjects: ['beta.test', 'alpha.localhost'], issuers: [{ module: 'internal' }] },
      { subjects: ['alpha.example.com'], issuers: [{ module: 'acme', email: 'ops@example.com' }] },
    ]);
  });

  it.each([
    ['blog.localhost', true], ['localhost', true], ['shop.test', true], ['db.internal', true], ['127.0.0.1', true],
    ['blog.example.com', false], ['example.org', false], ['my.local.example.com', false],
  ])('isLocalName(%s) = %s', (host, local) => {
    expect(isLocalName(host)).toBe(local);
  });

  it('edge policies: fleet defaults and per-project overrides share routes by identical policy', async () => {
    const fleet = { ...gw, policies: { maxBodyBytes: 1_048_576, deny: ['203.0.113.0/24'] } };
    const rows = [
      row('alpha'),
      row('beta'),
      row('gamma', { manifest: manifest('gamma', { edge: { requestIdHeader: 'X-Trace-Id', maxBodyBytes: 1024, allow: ['127.0.0.1/32'] } }) }),
    ];
    await golden('edge-policies', renderCaddyConfig(rows, fleet));
  });
});

describe('renderCaddyConfig rules', () => {
  it('is deterministic whatever the row order', () => {
    const rows = [row('a', { aliases: ['x.test'] }), row('b'), row('c')];
    expect(JSON.stringify(renderCaddyConfig([...rows].reverse(), gw))).toBe(JSON.stringify(renderCaddyConfig(rows, gw)));
  });

  it('never renders env values or secret references', () => {
    const text = JSON.stringify(renderCaddyConfig([row('alpha')], gw));
    expect(text).not.toContain('FEATURE');
    expect(text).not.toContain('JWT_SECRET');
  });

  it('keeps the route count flat: 1,000 projects with one policy render as many routes as one project', () => {
    const routesOf = (n: number) => {
      const rows = Array.from({ length: n }, (_, i) => row(`p${i}`));
      const cfg = renderCaddyConfig(rows, gw) as any;
      return cfg.apps.http.servers.atomo.routes.length;
    };
    expect(routesOf(1000)).toBe(routesOf(1));
  });

  it('sends to the case-insensitive lookup exactly the hosts with upper case or a trailing dot, never one holding "#"', () => {
    const cfg = renderCaddyConfig([row('alpha')], gw) as any;
    const first = cfg.apps.http.servers.atomo.routes[0].handle[0].mappings[0];
    expect(first.outputs).toEqual(['~']);
    const folds = (host: string) => new RegExp(first.input_regexp).test(host);
    for (const host of ['ALPHA.example.com', 'alpha.example.com.', 'a.B', 'X']) expect(folds(host), host).toBe(true);
    for (const host of ['alpha.example.com', '127.0.0.1', 'A#1', 'alpha.example.com#A', '#.', '']) expect(folds(host), host).toBe(false);
  });

  it('finds a project for any spelling of its hosts through the lookup regexes, and nothing else', () => {
    // Caddy's map semantics (first matching entry, ${1} from the regex, else the default) run in JavaScript;
    // Go's (?i:…) groups become [xX] classes. The real Caddy runs the same config in gateway-caddy.test.ts.
    const rows = Array.from({ length: 300 }, (_, i) => row(`p${i}`, { aliases: [`www.p${i}.test`, `p${i}.example.com.x`] }));
    const cfg = renderCaddyConfig(rows, gw) as any;
    const handlers = cfg.apps.http.servers.atomo.routes[1].handle as any[];
    const lookup = (host: string) => {
      const vars: Record<string, string> = { 'http.request.host': host };
      for (const h of handlers.filter((x) => x.handler === 'map')) {
        const input = h.source.replace(/\{([^}]+)\}/g, (_m: string, k: string) => vars[k] ?? '');
        let out = h.defaults[0];
        for (const m of h.mappings) {
          if (m.input !== undefined && m.input === input) { out = m.outputs[0]; break; }
          const found = m.input_regexp !== undefined && jsRegex(m.input_regexp).exec(input);
          if (found) { out = m.outputs[0].replace('${1}', found[1]); break; }
        }
        vars[h.destinations[0].slice(1, -1)] = out;
      }
      return vars['atomo.folded'];
    };
    const spell = fc.string({ minLength: 0, maxLength: 40 }).map((bits) => (host: string) =>
      [...host].map((c, i) => ((bits.charCodeAt(i % Math.max(1, bits.length)) ?? 0) % 2 ? c.toUpperCase() : c)).join(''));
    fc.assert(fc.property(fc.integer({ min: 0, max: 299 }), fc.integer({ min: 0, max: 2 }), spell, fc.boolean(), (i, which, sp, dot) => {
      const host = [`p${i}.example.com`, `www.p${i}.test`, `p${i}.example.com.x`][which];
      expect(lookup(sp(host) + (dot ? '.' : ''))).toBe(`p${i}`);
      expect(lookup(`${sp(host)}z`)).toBe('');
      expect(lookup(sp(`x${host}`))).toBe('');
    }));
  });

  it('gives a clashing host to the primary hostname over another project alias, once', () => {
    const rows = [row('b', { hostname: 'shared.test' }), row('a', { aliases: ['shared.test'] })];
    expect(hostTable(rows).filter((e) => e.host === 'shared.test')).toEqual([{ host: 'shared.test', projectId: 'b', kind: 'hostname' }]);
  });

  it('on-demand TLS without a permission URL is a clear INVALID_CONFIG error', () => {
    let caught: unknown;
    try {
      renderCaddyConfig([row('a')], { ...gw, tls: 'acme', onDemandTls: true });
    } catch (err) {
      caught = err;
    }
    expect(isFleetError(caught, 'INVALID_CONFIG')).toBe(true);
    expect((caught as Error).message).toMatch(/permissionUrl/);
  });
});

/** Every number in a rendered config, with its JSON path. */
function numbersIn(node: unknown, path = ''): [string, number][] {
  if (typeof node === 'number') return [[path, node]];
  if (!node || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) => numbersIn(v, `${path}/${k}`));
}

describe('renderGateway: one project cannot break the config for the others', () => {
  const withEdge = (id: string, edge: Manifest['edge']) => row(id, { manifest: manifest(id, { edge }) });

  it.each([
    ['too large for Caddy (int64) and for JavaScript', 1e20],
    ['not a whole number', 1.5],
    ['negative', -1],
    ['past 2^53', 2 ** 53],
  ])('drops a project whose edge.maxBodyBytes is %s, and renders the others as without it', (_name, maxBodyBytes) => {
    const good = [row('alpha'), row('beta')];
    const { config, dropped } = renderGateway([...good, withEdge('bad', { maxBodyBytes })], gw);
    expect(dropped).toEqual([{ id: 'bad', message: expect.stringMatching(/^edge\.maxBodyBytes must be a whole number of bytes from 0 to 9007199254740991, got -?[0-9e.+-]+/) }]);
    expect(config).toEqual(renderCaddyConfig(good, gw));
  });

  it('keeps a project at the largest safe size, and drops nothing when every project renders', () => {
    const rows = [row('alpha'), withEdge('big', { maxBodyBytes: Number.MAX_SAFE_INTEGER }), withEdge('none', { maxBodyBytes: 0 })];
    const { config, dropped } = renderGateway(rows, gw);
    expect(dropped).toEqual([]);
    expect(config).toEqual(renderCaddyConfig(rows, gw));
  });

  it('ignores a bad value on a row the gateway does not render (removed project)', () => {
    const removed = row('gone', { manifest: null });
    expect(renderGateway([row('alpha'), removed], gw).dropped).toEqual([]);
  });

  it('a bad fleet-wide value is a fleet error (INVALID_CONFIG), not every project dropped', () => {
    let caught: unknown;
    try {
      renderGateway([row('alpha')], { ...gw, policies: { maxBodyBytes: 1e20 } });
    } catch (err) {
      caught = err;
    }
    expect(isFleetError(caught, 'INVALID_CONFIG')).toBe(true);
    expect((caught as Error).message).toMatch(/^fleet\.yaml gateway\.policies\.maxBodyBytes must be a whole number/);
  });

  it('a project overriding a bad fleet value with a good one is still a fleet error', () => {
    expect(() => renderGateway([withEdge('a', { maxBodyBytes: 10 })], { ...gw, policies: { maxBodyBytes: -5 } })).toThrow(/gateway\.policies/);
  });

  it('renderCaddyConfig refuses a project it cannot render instead of emitting a number Caddy rejects', () => {
    let caught: unknown;
    try {
      renderCaddyConfig([row('alpha'), withEdge('bad', { maxBodyBytes: 1e20 })], gw);
    } catch (err) {
      caught = err;
    }
    expect(isFleetError(caught, 'INVALID_CONFIG')).toBe(true);
    expect((caught as { project?: string }).project).toBe('bad');
  });

  it('generated: whatever number a registry row holds, the config has only safe integers and drops exactly the bad ones', () => {
    const value = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1e20, 2 ** 53, -0, 0.5));
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 6 }), (sizes) => {
        const rows = [row('keep'), ...sizes.map((maxBodyBytes, i) => withEdge(`p${i}`, { maxBodyBytes }))];
        const { config, dropped } = renderGateway(rows, gw);
        const bad = sizes.flatMap((n, i) => (Number.isSafeInteger(n) && n >= 0 ? [] : [`p${i}`]));
        expect(dropped.map((d) => d.id)).toEqual(bad);
        for (const [path, n] of numbersIn(config)) expect(Number.isSafeInteger(n), path).toBe(true);
        expect(JSON.stringify(config)).toContain('keep.example.com');
      }),
    );
  });
});

describe('admin address', () => {
  it.each([
    ['127.0.0.1:2019', '127.0.0.1:2019'],
    ['http://127.0.0.1:2019', '127.0.0.1:2019'],
    ['http://caddy:2019/', 'caddy:2019'],
    ['unix:///run/caddy-admin/admin.sock', 'unix//run/caddy-admin/admin.sock'],
    ['unix//run/caddy-admin/admin.sock', 'unix//run/caddy-admin/admin.sock'],
    // Caddy 2.8+ socket permission bits stay in the address Caddy is given (compose.yaml uses them).
    ['unix:///run/caddy-admin/admin.sock|0222', 'unix//run/caddy-admin/admin.sock|0222'],
  ])('adminListen(%j) → %j, Caddy spelling', (input, want) => {
    expect(adminListen(input)).toBe(want);
  });

  it('a unix socket admin is rendered into the config, so a load keeps Caddy on the socket', () => {
    const cfg = renderCaddyConfig([], { ...gw, admin: 'unix:///run/caddy-admin/admin.sock' }) as any;
    expect(cfg.admin.listen).toBe('unix//run/caddy-admin/admin.sock');
  });
});

describe('hosts helpers', () => {
  it.each([
    ['acme.example.com', 'acme.example.com'],
    ['ACME.Example.Com', 'acme.example.com'],
    ['acme.example.com:8080', 'acme.example.com'],
    ['acme.example.com.', 'acme.example.com'],
    ['Acme.Example.com.:443', 'acme.example.com'],
    ['  acme.example.com ', 'acme.example.com'],
    ['[::1]:8080', '[::1]'],
    ['', ''],
    ['a b', ''],
    ['evil.com/path', ''],
  ])('normalizeHost(%j) → %j', (input, want) => {
    expect(normalizeHost(input)).toBe(want);
  });

  it.each([
    ['running, healthy, upstream', row('a'), 'up'],
    ['running, health unknown yet', row('a', { lastHealth: null }), 'up'],
    ['running, unhealthy', row('a', { lastHealth: { ok: false, at: '' } }), 'maintenance'],
    ['running, no upstream', row('a', { upstream: null }), 'maintenance'],
    ['stopped by state: stopped', row('a', { status: 'stopped', desiredState: 'stopped' }), 'maintenance'],
    ['still running but desired stopped', row('a', { desiredState: 'stopped' }), 'maintenance'],
    ['provisioning', row('a', { status: 'provisioning' }), 'maintenance'],
    ['failed', row('a', { status: 'failed' }), 'maintenance'],
    ['folder removed from git', row('a', { status: 'stopped', desiredState: 'stopped', manifest: null }), null],
    ['deleted', row('a', { status: 'deleted' }), null],
  ] as const)('rowRoute: %s → %s', (_name, r, want) => {
    expect(rowRoute(r)).toBe(want);
  });

  it.each([
    ['127.0.0.1:4100', '127.0.0.1:4100'],
    ['http://127.0.0.1:4100/', '127.0.0.1:4100'],
    ['atomo-acme:3000', 'atomo-acme:3000'],
    ['/run/atomo/acme.sock', 'unix//run/atomo/acme.sock'],
    ['unix:/run/atomo/acme.sock', 'unix//run/atomo/acme.sock'],
  ])('dialAddress(%j) → %j', (input, want) => {
    expect(dialAddress(input)).toBe(want);
  });

  it('effectivePolicy lays project fields over fleet fields', () => {
    expect(effectivePolicy({ maxBodyBytes: 10, deny: ['10.0.0.0/8'] }, { maxBodyBytes: 20 })).toEqual({
      requestIdHeader: 'X-Request-Id',
      maxBodyBytes: 20,
      allow: [],
      deny: ['10.0.0.0/8'],
    });
    expect(effectivePolicy({ requestIdHeader: 'X-Trace' }, { deny: [] })).toMatchObject({ requestIdHeader: 'X-Trace', deny: [] });
  });
});

describe('regex builders', () => {
  it.each([0, 1, 8, 9, 10, 64, 99, 100, 909, 1024, 1999, 65_536])('greaterThanRegex(%i) matches exactly the larger integers', (n) => {
    const re = new RegExp(greaterThanRegex(n));
    for (let x = 0; x <= Math.max(2100, n * 2 + 10); x++) {
      if (re.test(String(x)) !== x > n) throw new Error(`greaterThanRegex(${n}) on ${x} gave ${!(x > n)}`);
    }
    expect(re.test(`000${n + 1}`)).toBe(true);
    expect(re.test(`000${n}`)).toBe(false);
    expect(re.test('12a')).toBe(false);
    expect(re.test('')).toBe(false);
  });

  it('escapeRegex makes a host literal', () => {
    expect(new RegExp(`^${escapeRegex('a.b-c.test')}$`).test('aXb-c.test')).toBe(false);
  });
});

describe('on-demand TLS permission', () => {
  const rows = [
    row('alpha', { aliases: ['www.alpha.test'] }),
    row('stopped', { status: 'stopped', desiredState: 'stopped' }),
    row('removed', { manifest: null }),
  ];

  it.each([
    ['alpha.example.com', true],
    ['WWW.Alpha.Test.', true],
    ['stopped.example.com', true],
    ['removed.example.com', false],
    ['never.example.com', false],
    ['', false],
  ])('isAllowedHost(%j) → %s', (host, want) => {
    expect(isAllowedHost(rows, host)).toBe(want);
  });

  it('answers 200 / 403 / 400 for the daemon endpoint', () => {
    expect(permissionResponse(rows, '/gateway/allow?domain=alpha.example.com').status).toBe(200);
    expect(permissionResponse(rows, new URL('http://127.0.0.1/gateway/allow?domain=x.test'))).toEqual({
      status: 403,
      body: 'x.test is not a hostname of any project\n',
    });
    expect(permissionResponse(rows, '/gateway/allow').status).toBe(400);
  });
});
