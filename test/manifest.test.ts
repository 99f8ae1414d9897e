// Manifest and fleet.yaml validation: every bad input gives a clear issue with file, path and line.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { checkFleetConfig } from '../daemon/manifest/fleet-config.ts';
import { formatIssue, formatIssueGithub } from '../daemon/manifest/parse.ts';
import { checkProject } from '../daemon/manifest/project.ts';
import { combineFleet, isSecretLikeName } from '../daemon/manifest/rules.ts';
import { readWorktree } from '../daemon/git/worktree.ts';
import type { ValidationIssue } from '../daemon/types.ts';

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
        runtime: {}, env: {}, secrets: {}, resources: {},
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
      docker: { network: 'atomo' },
    });
    expect(Object.isFrozen(config!.gateway)).toBe(true);
  });
});

describe('secret-like env names', () => {
  it.each([
    ['JWT_SECRET', true], ['DB_PASSWORD', true], ['GITHUB_TOKEN', true], ['STRIPE_API_KEY', true],
    ['SECRET_SALT', true], ['DATABASE_URL', true], ['APIKEY', true],
    ['TOKEN_TTL', false], ['KEYBOARD_LAYOUT', false], ['MONKEY', false], ['CORS_ORIGINS', false], ['ATOMO_ENV', false],
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
