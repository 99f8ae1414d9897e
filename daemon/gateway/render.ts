// Registry rows + fleet gateway settings → the whole Caddy JSON config. Pure: no I/O, same input → same bytes.
//
// Routing is flat: `map` handlers resolve the project, then one route per distinct edge policy serves it.
//   1. host map: {http.request.host} (Caddy already strips `:port`) → project id. Exact lower-case names come
//      first (the fast path); a lower-case miss without a trailing dot stops at one regex returning '';
//      only upper-case or trailing-dot hosts go on to the case-insensitive lookup of fold.ts (a few regex runs).
//   2. pick map: "<host id>@<X-Atomo-Project header>" → host id when there is one, else the header value.
//      This is the precedence: exact hostname / alias → header → nothing.
//   3. project map: picked id → "route|upstream|id", route being "up:<policy>" / "maintenance:<policy>";
//      unknown → "none". 4. a one-regex map splits that into three placeholders.
// Caddy's map scans its entries in order and re-runs the scan each time its placeholder is read, so `vars`
// steps store each answer once: per request, one scan of the host list and one of the project list.
// Unknown ids fall through to one static 404, identical for every unknown host or header.
//
// Blast radius: the registry may hold values validation never saw (an older schema, a hand edit). A value that
// cannot be rendered is the error of the project holding it: renderGateway checks each project's own part first,
// leaves a bad one out and says why; a bad fleet-wide value is an INVALID_CONFIG error.
import { FleetError } from '../core/errors.ts';
import type { FleetConfig, RegistryRow } from '../core/types.ts';
import { dialAddress, effectivePolicy, hostTable, knownRows, policyGroups, rowRoute, type EffectivePolicy } from './hosts.ts';
import { foldHandlers } from './fold.ts';
import { greaterThanRegex } from './regex.ts';

export type CaddyConfig = Record<string, unknown>;
type Json = Record<string, unknown>;

export const PROJECT_HEADER = 'X-Atomo-Project';
export const NOT_FOUND_BODY = 'No project is served at this address.\n';
export const MAINTENANCE_BODY = 'This project is temporarily unavailable. Please retry shortly.\n';
export const RETRY_AFTER_SECONDS = '30';
const SERVER = 'atomo';
const TEXT = { 'Content-Type': ['text/plain; charset=utf-8'] };

export interface RenderOptions {
  permissionUrl?: string;
}

/** A project left out of the config, and why (a message for its condition: no secrets, what to fix). */
export interface DroppedProject {
  id: string;
  message: string;
}

/**
 * The config for every project that can be rendered, and the ones that cannot (left out, so they cannot break the
 * others). Throws FleetError('INVALID_CONFIG') for what no project is to blame for (fleet-wide settings).
 */
export function renderGateway(
  rows: RegistryRow[],
  gw: FleetConfig['gateway'],
  opts: RenderOptions = {},
): { config: CaddyConfig; dropped: DroppedProject[] } {
  const fleetProblem = policyProblem(effectivePolicy(gw.policies ?? {}, undefined));
  // Stryker disable next-line Regex: equivalent, policyProblem's only message starts with the one "edge." it holds.
  if (fleetProblem) throw new FleetError('INVALID_CONFIG', `fleet.yaml gateway.${fleetProblem.replace(/^edge\./, 'policies.')}`);
  const dropped: DroppedProject[] = [];
  // Projects sharing a policy share its verdict: a fleet of 1,000 has a handful of distinct policies.
  const verdicts = new Map<string, string | null>();
  for (const row of knownRows(rows)) {
    // The fleet policy passed the check above, so only the project's own maxBodyBytes can fail here.
    // Stryker disable next-line LogicalOperator,OptionalChaining: equivalent, see above; knownRows never holds a row without a manifest.
    const policy = effectivePolicy(gw.policies ?? {}, row.manifest?.edge);
    const key = JSON.stringify(policy);
    if (!verdicts.has(key)) verdicts.set(key, policyProblem(policy));
    const message = verdicts.get(key);
    if (message) dropped.push({ id: row.id, message });
  }
  const left = new Set(dropped.map((d) => d.id));
  return { config: renderCaddyConfig(rows.filter((r) => !left.has(r.id)), gw, opts), dropped };
}

export function renderCaddyConfig(
  rows: RegistryRow[],
  gw: FleetConfig['gateway'],
  opts: RenderOptions = {},
): CaddyConfig {
  for (const row of knownRows(rows)) {
    // Stryker disable next-line OptionalChaining: equivalent, knownRows never holds a row without a manifest.
    const problem = policyProblem(effectivePolicy(gw.policies ?? {}, row.manifest?.edge));
    if (problem) throw new FleetError('INVALID_CONFIG', `project ${row.id}: ${problem}`, { project: row.id });
  }
  const { policies, groupOf } = policyGroups(rows, gw);
  const routes: Json[] = [
    ...resolveRoutes(rows, groupOf),
    ...(gw.policies?.exposeMetricsAndMeta ? [] : [privateEndpointsRoute()]),
    ...policies.map((policy, i) => policyRoute(policy, i)),
    { handle: [notFound()], terminal: true },
  ];
  const server: Json = {
    listen: [gw.tls === 'acme' ? ':443' : gw.listen],
    routes,
    errors: { routes: errorRoutes() },
  };
  const config: Json = {
    admin: { listen: adminListen(gw.admin), config: { persist: false } },
    apps: { http: { servers: { [SERVER]: server } } },
  };
  applyTls(config, server, rows, gw, opts);
  const unsafe = unsafeNumber(config);
  // A backstop for numbers no check above knows: Caddy reads them as Go integers, JavaScript rounds past 2^53.
  if (unsafe) throw new FleetError('INVALID_CONFIG', `the gateway config would hold ${unsafe.value} at ${unsafe.path}, not a safe integer`);
  return config;
}

/**
 * Why a policy cannot be rendered, or null. Only what the renderer itself must compute with is checked here;
 * address ranges are Caddy's to parse (a range it rejects is found by the gateway step, see reconcile/gateway.ts).
 */
export function policyProblem(policy: EffectivePolicy): string | null {
  const n = policy.maxBodyBytes;
  if (n !== undefined && !(Number.isSafeInteger(n) && n >= 0)) {
    return `edge.maxBodyBytes must be a whole number of bytes from 0 to ${Number.MAX_SAFE_INTEGER}, got ${n}`;
  }
  return null;
}

function unsafeNumber(node: unknown, path = ''): { path: string; value: number } | null {
  if (typeof node === 'number') return Number.isSafeInteger(node) ? null : { path: path || '/', value: node };
  if (!node || typeof node !== 'object') return null;
  for (const [k, v] of Object.entries(node)) {
    const found = unsafeNumber(v, `${path}/${k}`);
    if (found) return found;
  }
  return null;
}

/**
 * Instances' own `/metrics` and `/meta` (and anything under them) are for the fleet, not the public: they answer the
 * uniform 404 whatever the host (nothing is proxied yet), so they say nothing about which hosts exist. Caddy's path matcher
 * compares without case and on the decoded, cleaned path, which is wanted: an instance's router may answer /METRICS
 * or /%6Detrics as /metrics. `gateway.policies.exposeMetricsAndMeta: true` turns this off.
 */
export const PRIVATE_PATHS = ['/metrics', '/metrics/*', '/meta', '/meta/*'];

function privateEndpointsRoute(): Json {
  return { match: [{ path: PRIVATE_PATHS }], handle: [notFound()], terminal: true };
}

/**
 * The host, pick and project maps, each looked up once: `vars` steps store their answers. A host that is not
 * exactly one of the lower-case names (upper case, a trailing dot) is looked up again without case (fold.ts).
 */
function resolveRoutes(rows: RegistryRow[], groupOf: Map<string, number>): Json[] {
  const table = hostTable(rows);
  // Upper case or a trailing dot: straight to the case-insensitive lookup, without scanning the exact names.
  // A host holding '#' is no host (and fold.ts relies on it never getting there).
  const hostMappings: Json[] = [{ input_regexp: '^[^#]*(?:[A-Z][^#]*|\\.)$', outputs: [FOLD] }];
  for (const { host, projectId } of table) hostMappings.push({ input: host, outputs: [projectId] });
  return [
    {
      handle: [
        { handler: 'map', source: '{http.request.host}', destinations: ['{atomo.host_id}'], mappings: hostMappings, defaults: [''] },
        { handler: 'vars', [HOST_VAR]: '{atomo.host_id}' },
      ],
    },
    { match: [{ vars: { [HOST_VAR]: [FOLD] } }], handle: [...foldHandlers(table), { handler: 'vars', [HOST_VAR]: '{atomo.folded}' }] },
    { handle: projectHandlers(rows, groupOf) },
  ];
}

/** Not a project id (ids are lower-case letters, digits and '-'): "look this host up again, without case". */
const FOLD = '~';
const HOST_VAR = 'atomo_host';

function projectHandlers(rows: RegistryRow[], groupOf: Map<string, number>): Json[] {
  // One output per project, "route|upstream|id", so the linear lookup runs once; a one-regex map splits it.
  const projectMappings = knownRows(rows).map((row) => {
    const route = rowRoute(row) === 'up' ? 'up' : 'maintenance';
    const upstream = route === 'up' && row.upstream ? dialAddress(row.upstream) : '';
    return { input: row.id, outputs: [`${route}:${groupOf.get(row.id)}|${upstream}|${row.id}`] };
  });
  return [
    {
      handler: 'map',
      source: `{http.vars.${HOST_VAR}}@{http.request.header.${PROJECT_HEADER}}`,
      destinations: ['{atomo.pick}'],
      mappings: [{ input_regexp: '^(?:([^@]+)@.*|@(.*))$', outputs: ['${1}${2}'] }],
      defaults: [''],
    },
    { handler: 'vars', atomo_pick: '{atomo.pick}' },
    {
      handler: 'map',
      source: '{http.vars.atomo_pick}',
      destinations: ['{atomo.project}'],
      mappings: projectMappings,
      defaults: ['none||'],
    },
    { handler: 'vars', atomo_project: '{atomo.project}' },
    {
      handler: 'map',
      source: '{http.vars.atomo_project}',
      destinations: ['{atomo.route}', '{atomo.upstream}', '{atomo.id}'],
      mappings: [{ input_regexp: '^([^|]*)\\|([^|]*)\\|(.*)$', outputs: ['${1}', '${2}', '${3}'] }],
      defaults: ['none', '', ''],
    },
    { handler: 'vars', atomo_route: '{atomo.route}', atomo_upstream: '{atomo.upstream}', atomo_id: '{atomo.id}' },
  ];
}

/** Serves every project that shares one effective edge policy: policy checks, then proxy or maintenance. */
function policyRoute(policy: EffectivePolicy, index: number): Json {
  const idHeader = policy.requestIdHeader;
  const steps: Json[] = [];
  if (policy.deny.length > 0) {
    steps.push({ match: [{ remote_ip: { ranges: policy.deny } }], handle: [forbidden()], terminal: true });
  }
  if (policy.allow.length > 0) {
    steps.push({ match: [{ not: [{ remote_ip: { ranges: policy.allow } }] }], handle: [forbidden()], terminal: true });
  }
  steps.push({ match: [{ vars: { atomo_route: [`maintenance:${index}`] } }], handle: [maintenance()], terminal: true });
  if (policy.maxBodyBytes !== undefined) {
    // A declared oversize body is refused up front; request_body below catches chunked ones while they stream.
    steps.push({
      match: [{ header_regexp: { 'Content-Length': { pattern: greaterThanRegex(policy.maxBodyBytes) } } }],
      handle: [tooLarge()],
      terminal: true,
    });
  }
  // A null list in the header matcher means "field absent": keep a client's request id, make one otherwise.
  steps.push({
    match: [{ header: { [idHeader]: null } }],
    handle: [{ handler: 'headers', request: { set: { [idHeader]: ['{http.request.uuid}'] } } }],
  });
  const proxy: Json[] = [];
  if (policy.maxBodyBytes !== undefined) proxy.push({ handler: 'request_body', max_size: policy.maxBodyBytes });
  proxy.push({
    handler: 'headers',
    // The client's X-Atomo-Project only chose the route; the instance is told the project it actually is.
    request: { set: { [PROJECT_HEADER]: ['{http.vars.atomo_id}'] } },
    response: { set: { [idHeader]: [`{http.request.header.${idHeader}}`] }, deferred: true },
  });
  proxy.push({ handler: 'reverse_proxy', upstreams: [{ dial: '{http.vars.atomo_upstream}' }] });
  steps.push({ handle: proxy });
  return {
    match: [{ vars: { atomo_route: [`up:${index}`, `maintenance:${index}`] } }],
    handle: [{ handler: 'subroute', routes: steps }],
    terminal: true,
  };
}

/**
 * Errors Caddy itself raises. An upstream it cannot reach (502 from reverse_proxy) is shown as the maintenance
 * page; a body over the limit gets a short 413. A 5xx the instance returns itself is passed through untouched.
 */
function errorRoutes(): Json[] {
  return [
    { match: [{ vars: { '{http.error.status_code}': ['502'] } }], handle: [maintenance()], terminal: true },
    {
      match: [{ vars: { '{http.error.status_code}': ['413'] } }],
      handle: [tooLarge()],
      terminal: true,
    },
  ];
}

function applyTls(
  config: Json,
  server: Json,
  rows: RegistryRow[],
  gw: FleetConfig['gateway'],
  opts: RenderOptions,
): void {
  if (gw.tls === 'off') {
    server.automatic_https = { disable: true };
    return;
  }
  const names = hostTable(rows).map((e) => e.host);
  const issuer: Json = gw.tls === 'internal' ? { module: 'internal' } : { module: 'acme' };
  if (gw.tls === 'acme' && gw.acmeEmail) issuer.email = gw.acmeEmail;
  // Routes match hosts through a map, which Caddy's automatic HTTPS cannot see: so TLS is spelled out.
  server.tls_connection_policies = [{}];
  server.automatic_https = { disable_redirects: true };
  const tls: Json = {};
  if (gw.onDemandTls) {
    if (!opts.permissionUrl) {
      throw new FleetError('INVALID_CONFIG', 'gateway.onDemandTls needs the daemon permission URL (opts.permissionUrl) for Caddy to ask before issuing a certificate');
    }
    tls.automation = { policies: [{ issuers: [issuer], on_demand: true }], on_demand: { ask: opts.permissionUrl } };
  } else {
    if (names.length > 0) tls.certificates = { automate: names };
    // With ACME, names no public CA can issue for (.localhost, .test, .internal, IPs) get Caddy's internal CA.
    const local = gw.tls === 'acme' ? names.filter(isLocalName) : [];
    const publicNames = names.filter((n) => !local.includes(n));
    tls.automation = {
      policies: [
        ...(local.length > 0 ? [{ subjects: local, issuers: [{ module: 'internal' }] }] : []),
        { ...(publicNames.length > 0 ? { subjects: publicNames } : {}), issuers: [issuer] },
      ],
    };
  }
  (config.apps as Json).tls = tls;
  if (gw.tls === 'internal') {
    // Caddy's local CA would otherwise try to add its root to this machine's trust store: clients are elsewhere.
    (config.apps as Json).pki = { certificate_authorities: { local: { install_trust: false } } };
  }
  if (gw.tls === 'acme') {
    // Port 80: ACME HTTP challenges (Caddy answers them on every server) and a redirect for everything else.
    const redirect = {
      handler: 'static_response',
      status_code: 308,
      headers: { Location: ['https://{http.request.host}{http.request.uri}'] },
    };
    ((config.apps as Json).http as { servers: Json }).servers[`${SERVER}_redirect`] = {
      listen: [':80'],
      routes: [{ handle: [redirect], terminal: true }],
      automatic_https: { disable: true },
    };
  }
}

const LOCAL_SUFFIXES = ['.localhost', '.local', '.test', '.internal', '.home.arpa', '.example', '.invalid'];

/** A name only this machine or network knows: no public CA will issue a certificate for it. */
export function isLocalName(host: string): boolean {
  return host === 'localhost' || /^[0-9.]+$/.test(host) || host.includes(':') || LOCAL_SUFFIXES.some((s) => host.endsWith(s));
}

function notFound(): Json {
  return staticText(404, NOT_FOUND_BODY);
}

function forbidden(): Json {
  return staticText(403, 'Forbidden.\n');
}

function tooLarge(): Json {
  return staticText(413, 'Request body too large.\n');
}

function maintenance(): Json {
  const page = staticText(503, MAINTENANCE_BODY);
  (page.headers as Json)['Retry-After'] = [RETRY_AFTER_SECONDS];
  return page;
}

function staticText(status: number, body: string): Json {
  return { handler: 'static_response', status_code: status, headers: { ...TEXT }, body };
}

/**
 * `gateway.admin` may be `host:port`, an http(s) URL or a unix socket (`unix:///run/caddy-admin/admin.sock`);
 * Caddy wants `host:port` or `unix//run/caddy-admin/admin.sock`.
 */
export function adminListen(admin: string): string {
  if (admin.startsWith('unix:')) return `unix/${admin.slice('unix:'.length).replace(/^\/+/, '/')}`;
  return admin.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}
