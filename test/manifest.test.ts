// Manifest and fleet.yaml validation: every bad input gives a clear issue with file, path and line.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DEFAULT_DOCKER_NETWORK } from '../daemon/config/defaults.ts';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { formatIssue, formatIssueGithub } from '../daemon/manifest/parse.ts';
import { checkProject } from '../daemon/manifest/project.ts';
import { combineFleet, isSecretLikeName, RESERVED_IDS } from '../daemon/manifest/rules.ts';
import { validateManifestText } from '../daemon/manifest/validate.ts';
import { secretRefAllowed } from '../daemon/secrets/refs.ts';
import { readWorktree } from '../daemon/git/worktree.ts';
import type { ValidationIssue } from '../daemon/core/types.ts';

const fixtures = new URL('./fixtures/manifests/', import.meta.url);
const load = <T>(name: string): T => parse(readFileSync(new URL(name, fixtures), 'utf8')) as T;
const SCHEMA = 'export interface Widget { id: string; name: string; }\n';

interface Expected { file?: string; path: string; line?: number; message: string }

/** A project folder held in memory: the input `checkProject` reads through. */
function folderSource(files: Record<string, string | null>) {
  return { readFile: async (rel: string) => files[rel] ?? null };
}

function expectIssues(issues: ValidationIssue[], expected: Expected[], defaultFile: string) {
  for (const want of expected) {
    const match = issues.find((i) => i.path === want.path && i.message.includes(want.message) &&
      i.file === (want.file ?? defaultFile));
    expect(match, `no issue ${JSON.stringify(want)} in:\n${issues.map(formatIssue).join('\n')}`).toBeDefined();
    if (want.line !== undefined) expect(match!.line).toBe(want.line);
  }
  for (const issue of issues) {
    // Clear, one-line messages, never a stack trace or an internal object dump.
    const text = formatIssue(issue);
    expect(text).not.toMatch(/\n\s+at |\[object Object\]|undefined/);
    expect(text.startsWith(issue.file)).toBe(true);
  }
}

describe('one project folder', () => {
  const cases = load<{ name: string; folder?: string; manifest: string | null; schema?: string | null; expect: Expected[] }[]>('single.yaml');
  it.each(cases)('$name', async (c) => {
    const folder = c.folder ?? 'acme';
    const source = folderSource({
      'project.yaml': c.manifest,
      'schema.ts': c.schema === undefined ? SCHEMA : c.schema,
    });
    const check = await checkProject(folder, source);
    const fleet = combineFleet('c0ffee', [check]);
    expect(fleet.projects).toEqual([]);
    expect(fleet.invalid.map((p) => p.id)).toEqual([folder]);
    expectIssues(fleet.invalid[0].errors, c.expect, `projects/${folder}/project.yaml`);
  });

  it('renders an issue as file:line:column: path: message, and as a GitHub annotation', async () => {
    const check = await checkProject('acme', folderSource({
      'project.yaml': 'id: acme\nhostname: acme.localhost\nresources:\n  cpus: "two"\n', 'schema.ts': SCHEMA,
    }));
    expect(check.issues.map(formatIssue)).toEqual(['projects/acme/project.yaml:4:9: /resources/cpus: must be number']);
    expect(check.issues.map(formatIssueGithub)).toEqual([
      '::error file=projects/acme/project.yaml,line=4,col=9::/resources/cpus: must be number',
    ]);
  });

  it('applies defaults to a minimal manifest', async () => {
    const check = await checkProject('acme', folderSource({ 'project.yaml': 'id: acme\nhostname: acme.localhost\n', 'schema.ts': SCHEMA }));
    const fleet = combineFleet('c0ffee', [check]);
    expect(fleet.invalid).toEqual([]);
    expect(fleet.projects[0]).toMatchObject({
      id: 'acme',
      commit: 'c0ffee',
      manifest: {
        id: 'acme', displayName: 'acme', hostname: 'acme.localhost', aliases: [], state: 'running', schema: 'schema.ts',
        runtime: {}, env: {}, secrets: {}, resources: { connections: 20 },
      },
      schema: { path: 'projects/acme/schema.ts', content: SCHEMA },
    });
    expect(fleet.projects[0].schema.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reads a schema file in a subfolder', async () => {
    const check = await checkProject('acme', folderSource({
      'project.yaml': 'id: acme\nhostname: acme.localhost\nschema: model/./app.ts\n', 'model/app.ts': SCHEMA,
    }));
    expect(check.issues).toEqual([]);
    expect(check.schema?.path).toBe('projects/acme/model/app.ts');
  });
});

describe('across projects', () => {
  const cases = load<{ name: string; projects: Record<string, Record<string, unknown>>; invalid: string[]; expect: Expected[] }[]>('fleet.yaml');
  it.each(cases)('$name', async (c) => {
    const checks = await Promise.all(Object.entries(c.projects).map(([id, fields]) =>
      checkProject(id, folderSource({ 'project.yaml': stringify({ id, ...fields }), 'schema.ts': SCHEMA }))));
    const fleet = combineFleet('c0ffee', checks);
    expect(fleet.invalid.map((p) => p.id)).toEqual(c.invalid);
    expect(fleet.projects.map((p) => p.id)).toEqual(Object.keys(c.projects).filter((id) => !c.invalid.includes(id)));
    const issues = fleet.invalid.flatMap((p) => p.errors);
    expect(issues).toHaveLength(c.expect.length);
    expectIssues(issues, c.expect, '');
  });
});

describe('fleet.yaml', () => {
  const cases = load<{ name: string; text: string; expect: Expected[] }[]>('fleet-config.yaml');
  it.each(cases)('$name', (c) => {
    const { config, issues } = checkFleetConfig(c.text);
    expect(issues).toHaveLength(c.expect.length);
    expectIssues(issues, c.expect, 'fleet.yaml');
    expect(config === null).toBe(c.expect.length > 0);
  });

  it('fills defaults and freezes the result', () => {
    const { config } = checkFleetConfig('driver: docker\n');
    expect(config).toEqual({
      branch: 'main', pollInterval: 30, driver: 'docker',
      postgres: { admin: 'embedded' },
      secretStore: { type: 'local', prefix: '/atomo' },
      gateway: { admin: 'http://127.0.0.1:2019', listen: ':8080', tls: 'off', policies: {} },
      docker: { network: DEFAULT_DOCKER_NETWORK },
      sharedSecrets: [],
    });
    expect(Object.isFrozen(config!.gateway)).toBe(true);
  });

  it('docker.network defaults to DEFAULT_DOCKER_NETWORK: the schema (which cannot import it) says the same', () => {
    const schema = JSON.parse(readFileSync(fileURLToPath(new URL('../schemas/fleet.schema.json', import.meta.url)), 'utf8'));
    expect(schema.properties.docker.properties.network.default).toBe(DEFAULT_DOCKER_NETWORK);
    expect(checkFleetConfig('driver: docker\ndocker: {}\n').config!.docker).toEqual({ network: DEFAULT_DOCKER_NETWORK });
    expect(checkFleetConfig('driver: docker\ndocker: { network: host }\n').config!.docker).toEqual({ network: 'host' });
  });
});

describe('secret-like env names', () => {
  it.each([
    ['JWT_SECRET', true], ['DB_PASSWORD', true], ['GITHUB_TOKEN', true], ['STRIPE_API_KEY', true],
    ['SECRET_SALT', true], ['DATABASE_URL', true], ['APIKEY', true], ['apikey', true], ['MYTOKEN', true],
    ['TOKEN_TTL', true], ['PRIVATE_PEM', true], ['SSH_PRIVATE', true], ['OLD_PASSWD_HASH', true], ['MYSECRETS', true],
    ['ACCESSKEY', true], ['MONKEY', true], // "ends in KEY", as the README says (`*KEY`)
    ['KEYBOARD_LAYOUT', false], ['KEY_ID', false], ['CORS_ORIGINS', false], ['ATOMO_ENV', false], ['DATABASE_HOST', false],
    ['PRIVACY_URL', false],
  ])('%s → %s', (name, secret) => {
    expect(isSecretLikeName(name)).toBe(secret);
  });
});

describe('the repository itself', () => {
  it('has valid example projects and a valid fleet.yaml', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const read = await readWorktree(root);
    expect(read.fleetIssues).toEqual([]);
    expect(read.invalid).toEqual([]);
    expect(read.projects.map((p) => p.id)).toEqual(expect.arrayContaining(['blog', 'shop']));
    expect(read.fleet).toMatchObject({ driver: 'process', postgres: { admin: 'embedded' }, gateway: { tls: 'off' } });
  });

  it('keeps the edge policy the same in both schemas', () => {
    const schema = (name: string) => JSON.parse(readFileSync(new URL(`../schemas/${name}`, import.meta.url), 'utf8'));
    expect(schema('fleet.schema.json').definitions.edge).toEqual(schema('project.schema.json').definitions.edge);
  });
});

/** One manifest in folder `acme` (or `folder`), checked alone: its issues. */
async function issuesOf(manifest: string | Buffer, opts: { folder?: string; schema?: string | Buffer } = {}) {
  const folder = opts.folder ?? 'acme';
  const files: Record<string, string | Buffer> = { 'project.yaml': manifest, 'schema.ts': opts.schema ?? SCHEMA };
  const check = await checkProject(folder, { readFile: async (rel: string) => files[rel] ?? null });
  const fleet = combineFleet('c0ffee', [check]);
  expect(fleet.projects).toEqual([]);
  return fleet.invalid[0].errors;
}

describe('reserved ids', () => {
  it('exports the control-plane names', () => {
    expect([...RESERVED_IDS].sort()).toEqual(
      ['admin', 'fleet', 'postgres', 'public', 'registry', 'root', 'shared', 'template0', 'template1'].sort());
  });

  it.each(['fleet', 'registry', 'postgres', 'template0', 'template1', 'shared', 'admin', 'root', 'public', 'pg_stat', 'pg_'])(
    'refuses the id %s', async (id) => {
      const errors = await issuesOf(`id: ${id}\nhostname: x.localhost\n`, { folder: id });
      expect(errors.map(formatIssue)).toContain(
        `projects/${id}/project.yaml:1:5: /id: ${id.startsWith('pg_') ? 'ids starting with pg_ are' : `\`${id}\` is`} reserved` +
        ` for ${id.startsWith('pg_') ? "Postgres's own roles" : RESERVED_REASON[id]}; choose another id`);
    });

  it.each(['fleets', 'pgx', 'rooted', 'my_admin'])('accepts the id %s', async (id) => {
    const check = await checkProject(id, folderSource({ 'project.yaml': `id: ${id}\nhostname: x.localhost\n`, 'schema.ts': SCHEMA }));
    expect(check.issues).toEqual([]);
  });
});

const RESERVED_REASON: Record<string, string> = {
  fleet: "the fleet's own database and secrets",
  registry: "the fleet's registry database",
  postgres: "Postgres's own database and role",
  template0: "Postgres's template databases",
  template1: "Postgres's template databases",
  shared: 'secrets shared across projects',
  admin: 'administrative roles',
  root: 'administrative roles',
  public: "Postgres's PUBLIC role and schema",
};

describe('secret scope', () => {
  it.each([
    ['/atomo', [], 'acme', '/atomo/acme/KEY', true],
    ['/atomo', [], 'acme', '/atomo/acme/db/URL', true],
    ['/atomo/', [], 'acme', '/atomo/acme/KEY', true],
    ['atomo', [], 'acme', '/atomo/acme/KEY', true],
    ['/atomo', [], 'acme', '/atomo/acme', false],
    ['/atomo', [], 'acme', '/atomo/acme/', false],
    ['/atomo', [], 'acme', '/atomo/acmeplus/KEY', false],
    ['/atomo', [], 'acme', '/atomo/blog/KEY', false],
    ['/atomo', [], 'acme', '/atomo/fleet/POSTGRES_ADMIN_URL', false],
    ['/atomo', [], 'acme', '/atomo/acme/../blog/KEY', false],
    ['/atomo', [], 'acme', '/atomo/acme/./KEY', false],
    ['/atomo', [], 'acme', '/atomo/acme//KEY', false],
    ['/atomo', [], 'acme', 'KEY', false],
    ['/atomo', [], 'acme', '/other/acme/KEY', false],
    ['/org/prod', [], 'acme', '/org/prod/acme/KEY', true],
    ['/org/prod', [], 'acme', '/atomo/acme/KEY', false],
    ['/atomo', ['/atomo/shared/SENTRY_DSN'], 'acme', '/atomo/shared/SENTRY_DSN', true],
    ['/atomo', ['/atomo/shared/SENTRY_DSN'], 'acme', '/atomo/shared/SENTRY_DSN2', false],
    ['/atomo', ['/atomo/shared/SENTRY_DSN'], 'acme', '/atomo/shared/OTHER', false],
    ['/atomo', ['/atomo/shared/'], 'acme', '/atomo/shared/OTHER', true],
    ['/atomo', ['/atomo/shared/'], 'acme', '/atomo/shared/a/b', true],
    ['/atomo', ['/atomo/shared/'], 'acme', '/atomo/shared', false],
    ['/atomo', ['/atomo/shared/'], 'acme', '/atomo/sharedx/KEY', false],
    ['/atomo', ['/atomo/shared/'], 'acme', '/atomo/shared/../fleet/X', false],
    ['/atomo', ['/atomo/'], 'acme', '/atomo/fleet/POSTGRES_ADMIN_URL', false],
    ['/atomo', ['/ext/'], 'acme', '/ext/KEY', true],
  ])('prefix %s, shared %j: %s may read %s → %s', (prefix, shared, id, ref, allowed) => {
    expect(secretRefAllowed(prefix, shared, id, ref)).toBe(allowed);
  });

  it('lets a project read what fleet.yaml shares, under its prefix', async () => {
    const manifest = 'id: acme\nhostname: acme.localhost\nsecrets:\n  SENTRY_DSN: /ops/shared/SENTRY_DSN\n  OWN: /ops/acme/OWN\n' +
      '  REL: stripe-key\n  NESTED: db/URL\n  OTHER: /ops/blog/KEY\n';
    const check = await checkProject('acme', folderSource({ 'project.yaml': manifest, 'schema.ts': SCHEMA }));
    expect(check.issues).toEqual([]);
    const { config } = checkFleetConfig('secretStore: { prefix: /ops }\nsharedSecrets: [/ops/shared/]\n');
    const fleet = combineFleet('c0ffee', [check], config);
    expect(fleet.invalid[0].errors.map(formatIssue)).toEqual([
      'projects/acme/project.yaml:8:10: /secrets/OTHER: may name only secrets under /ops/acme/ or ones fleet.yaml lists in ' +
      'sharedSecrets; store the value under /ops/acme/, or add the reference to sharedSecrets in fleet.yaml',
    ]);
    // Another project's path stays its own even when fleet.yaml lists it (such a fleet.yaml is refused as well).
    const withOther = combineFleet('c0ffee', [check], { ...config!, sharedSecrets: ['/ops/shared/', '/ops/blog/KEY'] });
    expect(withOther.invalid[0].errors.map((e) => e.path)).toEqual(['/secrets/OTHER']);
    // Without fleet.yaml: prefix /atomo, so even the project's own /ops path is someone else's.
    expect(combineFleet('c0ffee', [check], null).invalid[0].errors.map((e) => e.path))
      .toEqual(['/secrets/SENTRY_DSN', '/secrets/OWN', '/secrets/OTHER']);
  });
});

describe('hostile input never throws and names the file', () => {
  const big = (n: number) => 'id: acme\nhostname: acme.localhost\nenv:\n' + 'x'.repeat(n) + '\n';
  it.each([
    ['a manifest over 64 KiB', big(70 * 1024), /projects\/acme\/project\.yaml: is larger than 64 KiB/],
    ['a 10 MB manifest', big(10 * 1024 * 1024), /projects\/acme\/project\.yaml: is larger than 64 KiB/],
    ['a NUL byte', 'id: acme\nhostname: acme.localhost\n# \0\n', /projects\/acme\/project\.yaml:3:3: contains a NUL byte/],
    ['invalid UTF-8', Buffer.from([0x69, 0x64, 0x3a, 0x20, 0xc3, 0x28, 0x0a]), /projects\/acme\/project\.yaml: is not valid UTF-8/],
    ['a lone surrogate escape', 'id: acme\nhostname: acme.localhost\ndisplayName: "\\ud800"\n', /projects\/acme\/project\.yaml:3:14: \/displayName: /],
  ])('%s', async (_name, manifest, pattern) => {
    const errors = await issuesOf(manifest);
    expect(errors.map(formatIssue).join('\n')).toMatch(pattern);
  });

  it.each([
    ['a schema file over 1 MiB', 'x'.repeat(1024 * 1024 + 1), /projects\/acme\/schema\.ts: is larger than 1 MiB/],
    ['a schema file with NUL', 'export interface A { id: string }\n\0', /projects\/acme\/schema\.ts:2:1: contains a NUL byte/],
    ['a schema file that is not UTF-8', Buffer.from([0xff, 0xfe, 0x00]), /projects\/acme\/schema\.ts: is not valid UTF-8/],
  ])('%s', async (_name, schema, pattern) => {
    const errors = await issuesOf('id: acme\nhostname: acme.localhost\n', { schema });
    expect(errors.map(formatIssue).join('\n')).toMatch(pattern);
  });

  it('turns an exception inside the source into an issue on that project', async () => {
    const check = await checkProject('acme', { readFile: async () => { throw new Error('disk on fire'); } });
    expect(check.manifest).toBeNull();
    expect(check.issues.map(formatIssue)).toEqual([
      'projects/acme/project.yaml: could not be read: disk on fire; fix the file and run fleet validate again',
    ]);
  });

  it('reports at most 20 issues per file, then how many more', async () => {
    const manifest = 'id: acme\nhostname: acme.localhost\n' + Array.from({ length: 50 }, (_, i) => `k${i}: 1`).join('\n') + '\n';
    const errors = await issuesOf(manifest);
    expect(errors).toHaveLength(21);
    expect(errors[0]).toMatchObject({ path: '/k0', line: 3, message: 'unknown key "k0"; remove it or check its spelling' });
    expect(errors[20]).toMatchObject({ file: 'projects/acme/project.yaml', message: 'and 30 more issues in this file; fix the ones above first' });
  });

  it.each([
    ['env with 201 entries', `env: {${Array.from({ length: 201 }, (_, i) => `K${i}: v`).join(', ')}}`, '/env', 'must NOT have more than 200 properties'],
    ['secrets with 201 entries', `secrets: {${Array.from({ length: 201 }, (_, i) => `K${i}: v`).join(', ')}}`, '/secrets', 'must NOT have more than 200 properties'],
    ['101 aliases', `aliases: [${Array.from({ length: 101 }, (_, i) => `a${i}.localhost`).join(', ')}]`, '/aliases', 'must NOT have more than 100 items'],
    ['101 allowed ranges', `edge: { allow: [${Array.from({ length: 101 }, () => '10.0.0.0/8').join(', ')}] }`, '/edge/allow', 'must NOT have more than 100 items'],
    ['101 denied ranges', `edge: { deny: [${Array.from({ length: 101 }, () => '10.0.0.0/8').join(', ')}] }`, '/edge/deny', 'must NOT have more than 100 items'],
    ['an env value over 32 KiB', `env: { BIG: "${'x'.repeat(32 * 1024 + 1)}" }`, '/env/BIG', 'must NOT have more than 32768 characters'],
    ['a map with 1,001 keys', `x: {${Array.from({ length: 1001 }, (_, i) => `k${i}: 1`).join(', ')}}`, '/x', 'has 1001 entries'],
  ])('bounds: %s', async (_name, extra, path, message) => {
    const errors = await issuesOf(`id: acme\nhostname: acme.localhost\n${extra}\n`);
    expect(errors).toContainEqual(expect.objectContaining({ path, line: 3, message: expect.stringContaining(message) }));
  });

  it('accepts a newline or a tab in an env value, the own generated refs and values at their bounds', async () => {
    const check = await checkProject('acme', folderSource({
      'project.yaml': 'id: acme\nhostname: acme.localhost\ndisplayName: "Ünïcode ✓"\nenv:\n  CERT_BODY: "a\\nb"\n  NOTE: "a\\tb"\n' +
        'secrets:\n  JWT_SECRET: JWT_SECRET\n  OWN: /atomo/acme/OWN\n' +
        'resources: { memory: 6m, cpus: 0.29, connections: 100 }\nbackup: { schedule: "0 3 * * mon", retention: 1 }\n' +
        'edge: { maxBodyBytes: 1099511627776 }\n',
      'schema.ts': SCHEMA,
    }));
    expect(check.issues).toEqual([]);
    expect(combineFleet('c0ffee', [check]).invalid).toEqual([]);
  });
});

// How fast: `npm run bench -- validate` prints the times and the 20,000 ÷ 2,000 ratio side by side (a timed unit
// test would be flaky on a loaded machine). Here: what comes back, with and without the guards.
describe('huge manifests are refused with a bounded report', () => {
  const N = 20_000;
  const timed = async <T>(fn: () => T | Promise<T>) => {
    const start = performance.now();
    const result = await fn();
    return { result, ms: performance.now() - start };
  };
  const cases: [string, string][] = [
    ['20,000 env entries in flow style', `id: acme\nhostname: acme.localhost\nenv: {${Array.from({ length: N }, (_, i) => `K${i}: "v"`).join(', ')}}\n`],
    ['20,000 unknown top-level keys', `id: acme\nhostname: acme.localhost\n${Array.from({ length: N }, (_, i) => `k${i}: 1`).join('\n')}\n`],
    ['20,000 aliases', `id: acme\nhostname: acme.localhost\naliases: [${Array.from({ length: N }, (_, i) => `a${i}.localhost`).join(', ')}]\n`],
    ['20,000 bad env names', `id: acme\nhostname: acme.localhost\nenv: {${Array.from({ length: N }, (_, i) => `k${i}: 1`).join(', ')}}\n`],
  ];
  it.each(cases)('%s: refused below the size cap (inner function) and over it, at most 21 issues', async (_name, text) => {
    const inner = await timed(() => validateManifestText('projects/acme/project.yaml', text));
    expect(inner.result.value).toBeNull();
    expect(inner.result.issues.length).toBeGreaterThan(0);
    expect(inner.result.issues.length).toBeLessThanOrEqual(21);
    // Without the 1,000-entry guard every later step (yaml, ajv, locating issues) must still be linear.
    const unguarded = await timed(() => validateManifestText('projects/acme/project.yaml', text, { maxEntries: Infinity }));
    expect(unguarded.result.value).toBeNull();
    const raised = await timed(() => checkProject('acme', folderSource({ 'project.yaml': text, 'schema.ts': SCHEMA }), { maxManifestBytes: 1 << 20 }));
    expect(raised.result.issues.length).toBeGreaterThan(0);
    const capped = await timed(() => checkProject('acme', folderSource({ 'project.yaml': text, 'schema.ts': SCHEMA })));
    expect(capped.result.issues.map(formatIssue)).toEqual([
      expect.stringMatching(/^projects\/acme\/project\.yaml: is larger than 64 KiB/),
    ]);
  });

  it('20,000 keys in fleet.yaml: refused under a raised cap, and over it', async () => {
    const text = Array.from({ length: N }, (_, i) => `k${i}: 1`).join('\n') + '\n';
    const raised = await timed(() => checkFleetConfig(text, 'fleet.yaml', { maxBytes: 1 << 20 }));
    expect(raised.result.config).toBeNull();
    expect(raised.result.issues.length).toBeLessThanOrEqual(21);
    const capped = await timed(() => checkFleetConfig(text));
    expect(capped.result.issues.map(formatIssue)).toEqual([expect.stringMatching(/^fleet\.yaml: is larger than 64 KiB/)]);
  });
});

describe('deep nesting is refused before the YAML parser recurses, the same way at any stack depth', () => {
  const head = 'id: acme\nhostname: acme.localhost\n';
  /** Run `fn` with `frames` extra stack frames below it: the commit reader and the CLI call from different depths. */
  const atDepth = <T>(frames: number, fn: () => T): T => (frames === 0 ? fn() : atDepth(frames - 1, fn));
  it.each([
    ['flow lists', `${head}x: ${'['.repeat(3000)}${']'.repeat(3000)}\n`, '3'],
    ['flow maps', `${head}x: ${'{a: '.repeat(2000)}1${'}'.repeat(2000)}\n`, '3'],
    ['compact dashes', `${head}x:\n${'- '.repeat(2000)}y\n`, '4'],
    ['complex keys', `${head}${'? '.repeat(2000)}y\n`, '3'],
    ['block maps', `${head}${Array.from({ length: 1200 }, (_, i) => `${' '.repeat(i)}k:`).join('\n')} x\n`, '6[0-9]'],
  ])('%s', (_name, text, line) => {
    const results = [0, 2000, 5000].map((frames) => atDepth(frames, () =>
      checkProjectSync(text)));
    expect(results[0]).toEqual(results[1]);
    expect(results[0]).toEqual(results[2]);
    expect(results[0]).toHaveLength(1);
    expect(results[0][0]).toMatch(new RegExp(`^projects/acme/project\\.yaml:${line}:\\d+: is nested deeper than 32 levels`));
  });

  it.each([
    ['brackets inside quotes', `${head}env:\n  A: '${'{'.repeat(500)}'\n  B: "${'['.repeat(500)}\\"${'['.repeat(100)}"\n  C: "a\n    ${'['.repeat(100)}"\n`],
    ['brackets and dashes in a block scalar', `${head}env:\n  A: |\n    ${'- '.repeat(500)}\n    ${'['.repeat(500)}\n  B: >-\n    ${'? '.repeat(300)}\n`],
    ['brackets in a comment and in plain text', `${head}# ${'['.repeat(500)}\nenv:\n  A: a${'['.repeat(500)}\n`],
  ])('does not mistake %s for nesting', (_name, text) => {
    expect(validateManifestText('projects/acme/project.yaml', text).issues).toEqual([]);
  });
});

/** validateManifestText's issues, formatted (synchronous, so the stack depth of the caller is what it is). */
function checkProjectSync(text: string): string[] {
  return validateManifestText('projects/acme/project.yaml', text, { maxEntries: Infinity }).issues.map(formatIssue);
}
