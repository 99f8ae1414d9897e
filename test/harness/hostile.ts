// Generated hostile input for validation (and for a daemon pass): project folders and fleet.yaml texts that must be
// refused, each with the issue it must produce. Deterministic for a seed (fast-check's `fc.sample`).
//
// API
//   hostileProjects(seed, n): HostileProject[]
//     Exactly n project folders, every one INVALID on its own or, for the `duplicate-hostname` pairs, together.
//     Folder names are unique and never `alpha`, `bravo` or `charlie` (keep those for valid projects). Every
//     category appears when n >= HOSTILE_CATEGORIES.length; big cases (10 MB manifest, 20,000 keys, 1 MiB schema)
//     appear at most once each.
//     - id:       the folder name under projects/ (not always a valid id: that is one of the cases).
//     - files:    path relative to projects/<id>/ → content. A string or Buffer is a file (Buffers hold bytes that
//                 are not UTF-8); { symlink: target } is a symlink. The key "." means the folder itself (a
//                 folder that is a symlink).
//     - expect:   matches at least one issue of that project as `formatIssue` prints it
//                 (`projects/<id>/project.yaml:3:5: /id: ...`), naming the file and, where there is one, the line,
//                 column and JSON path. The issue is among the first 20 of its file (the per-file cap).
//     - category: which case it is (see HOSTILE_CATEGORIES).
//   hostileFleetYamls(seed, n): HostileFleetYaml[]
//     n fleet.yaml contents ({ name, text: string | Buffer, expect }) that must give fleetIssues; `expect` matches
//     one formatted issue (`fleet.yaml:1:9: /branch: ...`).
//   writeHostile(repoDir, project): writes one project folder into a repository's working tree (not committed).
//
// Example:  for (const p of hostileProjects(42, 300)) writeHostile(repo.dir, p);
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';

export type HostileFile = string | Buffer | { symlink: string };

export interface HostileProject {
  id: string;
  files: Record<string, HostileFile>;
  expect: RegExp;
  category: string;
}

export interface HostileFleetYaml {
  name: string;
  text: string | Buffer;
  expect: RegExp;
}

const SCHEMA = 'export interface Widget { id: string; name: string; }\n';
const RESERVED = ['fleet', 'registry', 'postgres', 'template0', 'template1', 'shared', 'admin', 'root', 'public'];

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const hostOf = (id: string) => `${id.replace(/_/g, '-')}.hostile.localhost`;
const base = (id: string) => `id: ${id}\nhostname: ${hostOf(id)}\n`;
/** The manifest file's name as issues print it, as a regex source. */
const F = (id: string) => esc(`projects/${id}/project.yaml`);
const manifest = (text: string | Buffer): Record<string, HostileFile> => ({ 'project.yaml': text, 'schema.ts': SCHEMA });
const re = (source: string) => new RegExp(source);

/** One category: an arbitrary for its parameters and how to build the case(s) for a folder id. */
interface Category {
  name: string;
  /** At most this many cases of the category (big inputs). */
  limit?: number;
  /** How many folders one case takes (a pair for duplicate hostnames). */
  size?: number;
  sample(seed: number): unknown;
  make(ids: string[], value: unknown): Omit<HostileProject, 'category'>[];
}

function cat<T>(
  name: string, arb: fc.Arbitrary<T>, make: (id: string, v: T) => Omit<HostileProject, 'id' | 'category'>,
  opts: { limit?: number } = {},
): Category {
  return {
    name, limit: opts.limit,
    sample: (seed) => fc.sample(arb, { seed, numRuns: 1 })[0],
    make: ([id], v) => [{ id, ...make(id, v as T) }],
  };
}

const envName = fc.stringMatching(/^[A-Z][A-Z0-9_]{0,12}$/).filter((n) => !/SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|KEY$/.test(n) && n !== 'DATABASE_URL');
// Never a valid project's id (alpha, bravo, charlie): a hostile case must not make a valid project invalid.
const slug = fc.stringMatching(/^[a-z][a-z0-9_]{0,12}$/).filter((s) => !['alpha', 'bravo', 'charlie'].includes(s));
// C0 controls as YAML escapes; tab and newline left out (tab is allowed, newline is allowed in env values).
const control = fc.constantFrom(...[...Array(32).keys(), 0x7f].filter((c) => c !== 0x09 && c !== 0x0a))
  .map((c) => `\\x${c.toString(16).padStart(2, '0')}`);

const CATEGORIES: Category[] = [
  cat('alias-bomb', fc.record({ levels: fc.integer({ min: 3, max: 9 }), width: fc.integer({ min: 3, max: 12 }) }), (id, { levels, width }) => {
    const lines = [`a0: &a0 [${Array(width).fill('"lol"').join(', ')}]`];
    for (let k = 1; k < levels; k++) lines.push(`a${k}: &a${k} [${Array(width).fill(`*a${k - 1}`).join(', ')}]`);
    return { files: manifest(base(id) + lines.join('\n') + '\n'), expect: re(`^${F(id)}:3:\\d+: /a0: sets the anchor &a0`) };
  }),
  cat('unresolved-alias', fc.stringMatching(/^[a-z]{1,10}$/), (id, name) => ({
    files: manifest(`id: ${id}\nhostname: *${name}\n`), expect: re(`^${F(id)}:2:11: /hostname: uses the alias \\*${name}`),
  })),
  cat('anchor-and-alias', fc.constantFrom('aliases: [*d]', 'deletion: { confirm: *d }'), (id, use) => ({
    files: manifest(`${base(id)}displayName: &d Display\n${use}\n`), expect: re(`^${F(id)}:3:\\d+: /displayName: sets the anchor &d`),
  })),
  cat('custom-tag', fc.record({
    tag: fc.constantFrom('!foo', '!!js/function', '!!binary', '!!python/object:os.system', '!<tag:evil.example,2000:x>', '!!timestamp', '!!str!'),
    key: fc.constantFrom('displayName', 'state', 'schema'),
  }), (id, { tag, key }) => ({
    files: manifest(`${base(id)}${key}: ${tag} aGVsbG8=\n`),
    expect: re(`^${F(id)}:3:\\d+: (/${key}: has the tag|invalid YAML)`),
  })),
  cat('manifest-10mb', fc.constant(10 * 1024 * 1024), (id, size) => ({
    files: manifest(base(id) + '# ' + 'x'.repeat(size) + '\n'), expect: re(`^${F(id)}: is larger than 64 KiB`),
  }), { limit: 1 }),
  cat('manifest-over-cap', fc.integer({ min: 64 * 1024 + 1, max: 200 * 1024 }), (id, size) => ({
    files: manifest(base(id) + '#' + 'y'.repeat(size)), expect: re(`^${F(id)}: is larger than 64 KiB`),
  })),
  cat('keys-20000', fc.constantFrom('env', 'top'), (id, where) => {
    const keys = Array.from({ length: 20_000 }, (_, i) => (where === 'env' ? `K${i}: v` : `k${i}: 1`));
    const text = where === 'env' ? `${base(id)}env: {${keys.join(', ')}}\n` : `${base(id)}${keys.join('\n')}\n`;
    return { files: manifest(text), expect: re(`^${F(id)}: is larger than 64 KiB`) };
  }, { limit: 1 }),
  cat('many-entries', fc.record({ n: fc.integer({ min: 1001, max: 5000 }), where: fc.constantFrom('env', 'top', 'aliases') }), (id, { n, where }) => {
    const text = where === 'env' ? `${base(id)}env: {${Array.from({ length: n }, (_, i) => `K${i}: v`).join(', ')}}\n`
      : where === 'aliases' ? `${base(id)}aliases: [${Array.from({ length: n }, (_, i) => `a${i}.x`).join(', ')}]\n`
        : `${base(id)}${Array.from({ length: n }, (_, i) => `k${i}: 1`).join('\n')}\n`;
    // At the top, id and hostname are entries too.
    const [path, count] = where === 'top' ? ['', n + 2] : [`/${where}: `, n];
    return { files: manifest(text), expect: re(`^${F(id)}:\\d+:\\d+: ${path}has ${count} entries`) };
  }),
  cat('nul-byte', fc.constantFrom('comment', 'value', 'key', 'start'), (id, where) => {
    const text = where === 'start' ? `\0${base(id)}` : where === 'comment' ? `${base(id)}# a\0b\n`
      : where === 'value' ? `${base(id)}displayName: A\0B\n` : `${base(id)}k\0ey: 1\n`;
    return { files: manifest(text), expect: re(`^${F(id)}:\\d+:\\d+: contains a NUL byte`) };
  }),
  cat('bad-utf8', fc.record({
    bytes: fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0x80], [0xfe, 0xff]),
    where: fc.constantFrom('displayName: ', '# ', ''),
  }), (id, { bytes, where }) => ({
    files: manifest(Buffer.concat([Buffer.from(`${base(id)}${where}`), Buffer.from(bytes), Buffer.from('\n')])),
    expect: re(`^${F(id)}: is not valid UTF-8`),
  })),
  cat('other-project-secret', fc.record({ name: envName, other: slug }), (id, { name, other }) => {
    const owner = other === id ? `${other}x` : other;
    return {
      files: manifest(`${base(id)}secrets:\n  ${name}: /atomo/${owner}/KEY\n`),
      expect: re(`^${F(id)}:4:\\d+: /secrets/${name}: may name only secrets under /atomo/${esc(id)}/`),
    };
  }),
  cat('fleet-secret', fc.constantFrom('/atomo/fleet/POSTGRES_ADMIN_URL', '/atomo/fleet/GIT_TOKEN', '/atomo/fleet/WEBHOOK_SECRET', '/aws/reference/x'), (id, ref) => ({
    files: manifest(`${base(id)}secrets:\n  PG: ${ref}\n`), expect: re(`^${F(id)}:4:7: /secrets/PG: may name only secrets under`),
  })),
  cat('dotdot-ref', fc.constantFrom('../alpha/KEY', './KEY', 'a/../../fleet/POSTGRES_ADMIN_URL', '..', '/atomo/self/../alpha/KEY', '/atomo/./x'), (id, ref) => ({
    files: manifest(`${base(id)}secrets:\n  REF: ${ref.replace('self', id)}\n`),
    expect: re(`^${F(id)}:4:8: /secrets/REF: must not contain "\\." or "\\.\\." segments`),
  })),
  cat('deep-ref', fc.record({ depth: fc.integer({ min: 14, max: 40 }), absolute: fc.boolean() }), (id, { depth, absolute }) => {
    const segments = Array.from({ length: absolute ? depth + 2 : depth }, (_, i) => `s${i}`).join('/');
    return {
      files: manifest(`${base(id)}secrets:\n  DEEP: ${absolute ? `/${segments}` : segments}\n`),
      expect: re(`^${F(id)}:4:9: /secrets/DEEP: is nested deeper than the 15 levels`),
    };
  }),
  cat('long-ref', fc.integer({ min: 1000, max: 3000 }), (id, length) => ({
    files: manifest(`${base(id)}secrets:\n  LONG: ${'a'.repeat(length)}\n`),
    expect: re(`^${F(id)}:4:9: /secrets/LONG: (is longer than the 1011 characters|must NOT have more than 1011 characters)`),
  })),
  cat('generated-secret', fc.record({ name: fc.constantFrom('DATABASE_URL', 'JWT_SECRET'), where: fc.constantFrom('env', 'secrets') }), (id, { name, where }) => ({
    files: manifest(`${base(id)}${where}:\n  ${name}: ${where === 'env' ? 'plain' : '/atomo/alpha/' + name}\n`),
    expect: re(`^${F(id)}:4:\\d+: /${where}/${name}: .*generated by the fleet`),
  })),
  cat('max-body-bytes', fc.constantFrom('1e20', '1099511627777', '1.5', '0', '-1', '"10MB"', '.inf', '1e400', '.nan', '0x1p70'), (id, v) => ({
    files: manifest(`${base(id)}edge: { maxBodyBytes: ${v} }\n`), expect: re(`^${F(id)}:3:\\d+: /edge/maxBodyBytes: `),
  })),
  cat('bad-cron', fc.constantFrom('61 * * * *', '* * *', '1-2000000 * * * *', '0 0 31 2 *', '@daily', 'every day at 3', '*/0 * * * *', '0 24 * * *', '0 3 * * * * *', `0 3 * * ${'1,'.repeat(60)}1`), (id, schedule) => ({
    files: manifest(`${base(id)}backup: { schedule: "${schedule}", retention: 7 }\n`), expect: re(`^${F(id)}:3:\\d+: /backup/schedule: `),
  })),
  cat('memory', fc.constantFrom('0m', '5m', '6143k', '99999999999g', '1025g', '1t', '-1m', '256M', '256mb', '1.5g', '1048577m', '""'), (id, v) => ({
    files: manifest(`${base(id)}resources: { memory: ${v} }\n`), expect: re(`^${F(id)}:3:\\d+: /resources/memory: `),
  })),
  cat('cpus', fc.constantFrom('1000', '0', '-1', '0.001', '0.333', '64.01', '"1"', '.nan', '.inf', '1e-9'), (id, v) => ({
    files: manifest(`${base(id)}resources: { cpus: ${v} }\n`), expect: re(`^${F(id)}:3:\\d+: /resources/cpus: `),
  })),
  cat('connections', fc.constantFrom('0', '101', '2.5', '-1', '"10"', '1e9', '.inf'), (id, v) => ({
    files: manifest(`${base(id)}resources: { connections: ${v} }\n`), expect: re(`^${F(id)}:3:\\d+: /resources/connections: `),
  })),
  cat('symlink-schema', fc.constantFrom('/etc/passwd', '../alpha/schema.ts', '/proc/self/environ', 'schema.ts', '/nonexistent/x'), (id, target) => ({
    files: { 'project.yaml': base(id), 'schema.ts': { symlink: target } },
    expect: re(`^${esc(`projects/${id}/schema.ts`)}: is a symlink`),
  })),
  cat('symlink-deep', fc.array(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: 1, maxLength: 4 }), (id, parts) => {
    const path = [...parts, 'link'].join('/');
    return {
      files: { ...manifest(base(id)), [`${parts.join('/')}/keep.txt`]: 'x', [path]: { symlink: '../'.repeat(parts.length + 2) } },
      expect: re(`^${esc(`projects/${id}/${path}`)}: is a symlink`),
    };
  }),
  cat('symlink-folder', fc.constantFrom('alpha', '/etc', '../..', 'nowhere'), (id, target) => ({
    files: { '.': { symlink: target } }, expect: re(`^${esc(`projects/${id}`)}: is a symlink`),
  })),
  cat('symlink-manifest', fc.constantFrom('../alpha/project.yaml', '/etc/hostname'), (id, target) => ({
    files: { 'project.yaml': { symlink: target }, 'schema.ts': SCHEMA },
    expect: re(`^${esc(`projects/${id}/project.yaml`)}: is a symlink`),
  })),
  cat('id-not-folder', slug, (id, other) => ({
    files: manifest(`id: ${other === id ? `${other}x` : other}\nhostname: ${hostOf(id)}\n`),
    expect: re(`^${F(id)}:1:5: /id: must equal the folder name "${id}"`),
  })),
  {
    name: 'duplicate-hostname', size: 2,
    sample: (seed) => fc.sample(fc.constantFrom('hostname', 'alias'), { seed, numRuns: 1 })[0],
    make: ([a, b], how) => [
      {
        id: a, files: manifest(base(a)),
        expect: re(`^${F(a)}:2:11: /hostname: "${esc(hostOf(a))}" is also used by ${F(b)} /${how === 'alias' ? 'aliases/0' : 'hostname'}`),
      },
      {
        id: b,
        files: manifest(how === 'alias' ? `${base(b)}aliases: [${hostOf(a)}]\n` : `id: ${b}\nhostname: ${hostOf(a)}\n`),
        expect: re(`^${F(b)}:\\d+:\\d+: /${how === 'alias' ? 'aliases/0' : 'hostname'}: "${esc(hostOf(a))}" is also used by ${F(a)} /hostname`),
      },
    ],
  },
  cat('not-a-map', fc.constantFrom('- a\n- b\n', 'just text\n', '42\n', '"quoted"\n', '[1, 2]\n', 'true\n', '', '# only a comment\n', '~\n'), (id, text) => ({
    files: manifest(text), expect: re(`^${F(id)}:1:1: (must be a map|missing required key "(id|hostname)")`),
  })),
  // Block nesting costs depth² bytes of indentation: kept under the 64 KiB cap.
  cat('deep-nesting', fc.record({ depth: fc.integer({ min: 40, max: 3000 }), flow: fc.boolean() }), (id, { depth, flow }) => ({
    files: manifest(flow ? `${base(id)}x: ${'['.repeat(depth)}${']'.repeat(depth)}\n`
      : `${base(id)}x:\n${Array.from({ length: Math.min(depth, 200) }, (_, i) => `${'  '.repeat(i + 1)}k:`).join('\n')}\n`),
    expect: re(`^${F(id)}:\\d+:\\d+: (/x[/0k]*: )?is nested deeper than 32 levels`),
  })),
  cat('secret-like-env', fc.record({
    pre: fc.constantFrom('', 'MY', 'APP_', 'X_', 'OLD'), word: fc.constantFrom('SECRET', 'PASSWORD', 'PASSWD', 'TOKEN', 'PRIVATE', 'KEY'),
    post: fc.constantFrom('', '_TTL', 'S', '_PEM', '_2'),
  }), (id, { pre, word, post }) => {
    const name = `${pre}${word}${word === 'KEY' ? '' : post}`;
    return { files: manifest(`${base(id)}env:\n  ${name}: value\n`), expect: re(`^${F(id)}:4:\\d+: /env/${name}: looks like a secret`) };
  }),
  cat('control-char', fc.record({ c: control, where: fc.constantFrom('displayName', 'env', 'hostname', 'key', 'state') }), (id, { c, where }) => {
    const text = where === 'env' ? `${base(id)}env:\n  NOTE: "a${c}b"\n`
      : where === 'key' ? `${base(id)}env:\n  "A${c}B": x\n`
        : where === 'hostname' ? `id: ${id}\nhostname: "${hostOf(id)}${c}"\n`
          : `${base(id)}${where}: "x${c}y"\n`;
    return { files: manifest(text), expect: re(`^${F(id)}:\\d+:\\d+: /\\S*: (key )?contains a control character`) };
  }),
  cat('duplicate-key', fc.constantFrom('hostname', 'id', 'env'), (id, key) => ({
    files: manifest(key === 'env' ? `${base(id)}env: {A: x}\nenv: {B: y}\n` : `${base(id)}${key}: ${key === 'id' ? id : hostOf(id)}\n`),
    expect: re(`^${F(id)}:\\d+:1: /${key}: duplicate key "${key}"`),
  })),
  cat('url-credentials', fc.constantFrom('postgres://app:pw@db/x', 'https://user:tok@api.example.com/', 'redis://:pass@cache:6379'), (id, url) => ({
    files: manifest(`${base(id)}env:\n  UPSTREAM: "${url}"\n`), expect: re(`^${F(id)}:4:\\d+: /env/UPSTREAM: looks like a secret`),
  })),
  cat('unknown-key', fc.stringMatching(/^[a-z]{3,12}$/).filter((k) => !['id', 'hostname', 'aliases', 'state', 'schema', 'runtime', 'env', 'secrets', 'resources', 'backup', 'deletion', 'tenancy', 'edge', 'displayname'].includes(k.toLowerCase())), (id, key) => ({
    files: manifest(`${base(id)}${key}: 1\n`), expect: re(`^${F(id)}:3:1: /${key}: unknown key "${key}"`),
  })),
  cat('proto-key', fc.constantFrom('__proto__', 'constructor', 'prototype'), (id, key) => ({
    files: manifest(`${base(id)}${key}: { state: deleted }\n`), expect: re(`^${F(id)}:3:1: /${key}: unknown key`),
  })),
  cat('missing-manifest', fc.constant(0), (id) => ({ files: { 'schema.ts': SCHEMA }, expect: re(`^${F(id)}: missing`) })),
  cat('schema-file', fc.constantFrom('empty', 'blank', 'missing', 'nul', 'utf8'), (id, kind) => {
    const file = esc(`projects/${id}/schema.ts`);
    const cases: Record<string, [HostileFile | undefined, string]> = {
      empty: ['', `^${file}:1:1: schema file is empty`],
      blank: [' \n\t\n', `^${file}:1:1: schema file is empty`],
      missing: [undefined, `^${F(id)}:1:1: /schema: schema file`],
      nul: [`${SCHEMA}\0`, `^${file}:2:1: contains a NUL byte`],
      utf8: [Buffer.from([0x65, 0x78, 0xff, 0x0a]), `^${file}: is not valid UTF-8`],
    };
    const [content, expect] = cases[kind];
    const files: Record<string, HostileFile> = { 'project.yaml': base(id) };
    if (content !== undefined) files['schema.ts'] = content;
    return { files, expect: re(expect) };
  }),
  cat('schema-1mib', fc.constant(1024 * 1024 + 1), (id, size) => ({
    files: { 'project.yaml': base(id), 'schema.ts': `// ${'z'.repeat(size)}\n` },
    expect: re(`^${esc(`projects/${id}/schema.ts`)}: is larger than 1 MiB`),
  }), { limit: 1 }),
  cat('schema-path', fc.constantFrom('../alpha/schema.ts', '/etc/passwd', '..', '.', 'a\\\\b.ts', '../../fleet.yaml'), (id, path) => ({
    files: manifest(`${base(id)}schema: "${path}"\n`), expect: re(`^${F(id)}:3:9: /schema: `),
  })),
  cat('wrong-type', fc.constantFrom(['hostname: 123', '/hostname'], ['aliases: x.localhost', '/aliases'], ['env: { A: 1 }', '/env/A'],
    ['state: 1', '/state'], ['runtime: []', '/runtime'], ['env: []', '/env'], ['secrets: "x"', '/secrets'], ['tenancy: { rls: "yes" }', '/tenancy/rls']),
  (id, [line, path]) => {
    const text = line.startsWith('hostname') ? `id: ${id}\n${line}\n` : `${base(id)}${line}\n`;
    return { files: manifest(text), expect: re(`^${F(id)}:\\d+:\\d+: ${esc(path)}: must be`) };
  }),
  cat('bad-hostname', fc.constantFrom('Upper.localhost', 'under_score.localhost', 'trailing.dot.', '-lead.localhost', `${'a'.repeat(64)}.localhost`,
    `${'x.'.repeat(127)}x`, 'ünï.localhost', '"*.wild.localhost"', '"with space.localhost"', '"a..b"'), (id, host) => ({
    files: manifest(`id: ${id}\nhostname: ${host}\n`), expect: re(`^${F(id)}:2:11: /hostname: `),
  })),
  cat('edge', fc.constantFrom(['requestIdHeader: X-' + 'A'.repeat(70), '/edge/requestIdHeader'], ['requestIdHeader: "X Bad"', '/edge/requestIdHeader'],
    ['allow: [10.0.0.0/33]', '/edge/allow/0'], ['deny: [not-an-ip]', '/edge/deny/0'],
    [`allow: [${Array(101).fill('10.0.0.0/8').join(', ')}]`, '/edge/allow'], ['unknown: 1', '/edge/unknown']),
  (id, [line, path]) => ({ files: manifest(`${base(id)}edge: { ${line} }\n`), expect: re(`^${F(id)}:3:\\d+: ${esc(path)}: `) })),
  cat('display-name', fc.constantFrom('x'.repeat(101), '"line\\nbreak"', '"bell\\a"', '""', '"\\e[2J"'), (id, name) => ({
    files: manifest(`${base(id)}displayName: ${name}\n`), expect: re(`^${F(id)}:3:14: /displayName: `),
  })),
  cat('lone-surrogate', fc.constantFrom('\\ud800', '\\udfff', 'a\\ud83d'), (id, s) => ({
    files: manifest(`${base(id)}displayName: "${s}"\n`), expect: re(`^${F(id)}:3:14: /displayName: contains invalid Unicode`),
  })),
  cat('multi-document', fc.constant(0), (id) => ({
    files: manifest(`${base(id)}---\n${base(id)}`), expect: re(`^${F(id)}:\\d+:\\d+: invalid YAML`),
  })),
  cat('deleted-unconfirmed', fc.constantFrom('', '\ndeletion: { confirm: someone_else }'), (id, extra) => ({
    files: manifest(`${base(id)}state: deleted${extra}\n`), expect: re(`^${F(id)}:\\d+:\\d+: /(state|deletion/confirm): state: deleted needs deletion.confirm`),
  })),
  cat('env-bounds', fc.constantFrom('count', 'value'), (id, kind) => ({
    files: manifest(kind === 'count' ? `${base(id)}env: {${Array.from({ length: 201 }, (_, i) => `K${i}: v`).join(', ')}}\n`
      : `${base(id)}env: { BIG: "${'b'.repeat(32 * 1024 + 1)}" }\n`),
    expect: re(`^${F(id)}:3:\\d+: /env(/BIG)?: must NOT have more than`),
  })),
  cat('non-finite', fc.record({ v: fc.constantFrom('.nan', '.inf', '-.inf', '.NaN'), key: fc.constantFrom('runtime: { port: %v }', 'backup: { schedule: "0 3 * * *", retention: %v }') }), (id, { v, key }) => ({
    files: manifest(`${base(id)}${key.replace('%v', v)}\n`), expect: re(`^${F(id)}:3:\\d+: /\\S+: must be a finite number`),
  })),
  cat('reserved-env', fc.constantFrom('PORT', 'HOST', 'ATOMO_PROJECT_ID', 'ATOMO_SCHEMA_PATH'), (id, name) => ({
    files: manifest(`${base(id)}env:\n  ${name}: "x"\n`), expect: re(`^${F(id)}:4:\\d+: /env/${name}: is set by the fleet`),
  })),
  cat('env-and-secret', envName, (id, name) => ({
    files: manifest(`${base(id)}env:\n  ${name}: x\nsecrets:\n  ${name}: ${name}\n`), expect: re(`^${F(id)}:4:\\d+: /env/${name}: is also under secrets`),
  })),
];

/** Folder names for the id categories: reserved names first, then ids Postgres reserves, then invalid ids. */
const ID_CATEGORIES = ['reserved-id', 'bad-id'];
export const HOSTILE_CATEGORIES: readonly string[] = [...CATEGORIES.map((c) => c.name), ...ID_CATEGORIES];

/** The id categories need their own folder names, so they are built here rather than from a generated id. */
function idCase(kind: string, seq: number, used: Set<string>, seed: number): Omit<HostileProject, 'category'> {
  if (kind === 'reserved-id') {
    const id = RESERVED.find((r) => !used.has(r)) ?? `pg_${fc.sample(slug, { seed, numRuns: 1 })[0]}${seq}`;
    return { id, files: manifest(base(id)), expect: re(`^${F(id)}:1:5: /id: .*reserved for`) };
  }
  const forms = [`UPPER${seq}`, `bad-name-${seq}`, `${seq}digit`, `x${seq}${'y'.repeat(45)}`, `Mixed_${seq}`];
  const id = forms[seq % forms.length];
  return { id, files: manifest(`id: ${id}\nhostname: ${hostOf(id.toLowerCase().replace(/[^a-z0-9-]/g, '-'))}\n`), expect: re(`^${F(id)}:1:5: /id: must be a lower-case slug`) };
}

/** n hostile project folders for `seed` (see the API at the top). */
export function hostileProjects(seed: number, n: number): HostileProject[] {
  const out: HostileProject[] = [];
  const used = new Set(['alpha', 'bravo', 'charlie']);
  const counts = new Map<string, number>();
  const names = [...CATEGORIES.map((c) => c.name), ...ID_CATEGORIES];
  for (let i = 0; out.length < n; i++) {
    const name = names[i % names.length];
    const category = CATEGORIES.find((c) => c.name === name);
    const count = counts.get(name) ?? 0;
    if (category?.limit !== undefined && count >= category.limit) continue;
    if ((category?.size ?? 1) > n - out.length) continue;
    counts.set(name, count + 1);
    const caseSeed = seed * 100_003 + i;
    const built = category
      ? category.make(Array.from({ length: category.size ?? 1 }, (_, k) => `h${String(out.length + k).padStart(3, '0')}_${name.replace(/-/g, '_').slice(0, 20)}`),
        category.sample(caseSeed))
      : [idCase(name, out.length, used, caseSeed)];
    for (const project of built) {
      if (used.has(project.id)) throw new Error(`hostile generator: folder ${project.id} used twice`);
      used.add(project.id);
      out.push({ ...project, category: name });
    }
  }
  return out;
}

/** Write one hostile project folder under `<repoDir>/projects/<id>/` (not committed). */
export function writeHostile(repoDir: string, project: HostileProject): void {
  const folder = join(repoDir, 'projects', project.id);
  const self = project.files['.'];
  if (self && typeof self === 'object' && 'symlink' in self) {
    mkdirSync(dirname(folder), { recursive: true });
    symlinkSync(self.symlink, folder);
    return;
  }
  for (const [rel, content] of Object.entries(project.files)) {
    const path = join(folder, rel);
    mkdirSync(dirname(path), { recursive: true });
    if (typeof content === 'object' && !Buffer.isBuffer(content)) symlinkSync(content.symlink, path);
    else writeFileSync(path, content);
  }
}

const FLEET = esc('fleet.yaml');
const FLEET_CASES: fc.Arbitrary<HostileFleetYaml>[] = [
  fc.integer({ min: 3, max: 8 }).map((levels) => {
    const lines = ['a0: &a0 ["lol", "lol", "lol", "lol"]'];
    for (let k = 1; k < levels; k++) lines.push(`a${k}: &a${k} [*a${k - 1}, *a${k - 1}, *a${k - 1}, *a${k - 1}]`);
    return { name: `alias bomb (${levels} levels)`, text: lines.join('\n') + '\n', expect: re(`^${FLEET}:1:\\d+: /a0: sets the anchor`) };
  }),
  fc.constant({ name: 'unresolved alias', text: 'branch: *nope\n', expect: re(`^${FLEET}:1:9: /branch: uses the alias`) }),
  fc.constantFrom('!foo', '!!js/function', '!!binary').map((tag) => ({ name: `tag ${tag}`, text: `branch: ${tag} main\n`, expect: re(`^${FLEET}:1:\\d+: /branch: has the tag`) })),
  fc.constantFrom('start', 'end').map((w) => ({ name: `NUL at ${w}`, text: w === 'start' ? '\0branch: main\n' : 'branch: main\n\0', expect: re(`^${FLEET}:\\d+:\\d+: contains a NUL byte`) })),
  fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80]).map((b) => ({ name: `bad UTF-8 ${b.join(' ')}`, text: Buffer.concat([Buffer.from('branch: '), Buffer.from(b)]), expect: re(`^${FLEET}: is not valid UTF-8`) })),
  fc.integer({ min: 64 * 1024 + 1, max: 10 * 1024 * 1024 }).map((size) => ({ name: `${size} bytes`, text: `#${'x'.repeat(size)}`, expect: re(`^${FLEET}: is larger than 64 KiB`) })),
  fc.constant({ name: '20,000 keys', text: Array.from({ length: 20_000 }, (_, i) => `k${i}: 1`).join('\n'), expect: re(`^${FLEET}: is larger than 64 KiB`) }),
  fc.integer({ min: 1001, max: 4000 }).map((n) => ({ name: `${n} keys`, text: `${Array.from({ length: n }, (_, i) => `k${i}: 1`).join('\n')}\n`, expect: re(`^${FLEET}:1:1: has ${n} entries`) })),
  fc.constantFrom('- a\n', 'text\n', '42\n', '[1]\n').map((text) => ({ name: `not a map ${JSON.stringify(text)}`, text, expect: re(`^${FLEET}:1:1: must be a map`) })),
  fc.integer({ min: 33, max: 2000 }).map((d) => ({ name: `nested ${d}`, text: `x: ${'['.repeat(d)}${']'.repeat(d)}\n`, expect: re(`^${FLEET}:\\d+:\\d+: (/x[/0]*: )?is nested deeper than 32 levels`) })),
  fc.stringMatching(/^[a-z]{3,10}$/).filter((k) => !['branch', 'driver', 'postgres', 'gateway', 'docker', 'git'].includes(k))
    .map((k) => ({ name: `unknown key ${k}`, text: `${k}: 1\n`, expect: re(`^${FLEET}:1:1: /${k}: unknown key`) })),
  fc.constantFrom('a..b', '-main', 'main/', 'x.lock', 'x.', '"@"', 'a@{1}', 'a//b', 'a/.b', '"a b"', 'a~1', 'a^', '"a:b"', 'a?', 'a*', 'a[b')
    .map((b) => ({ name: `branch ${b}`, text: `branch: ${b}\n`, expect: re(`^${FLEET}:1:9: /branch: .*git refuses`) })),
  fc.constantFrom('0', '86401', '-5', '1.5', '.inf').map((v) => ({ name: `pollInterval ${v}`, text: `pollInterval: ${v}\n`, expect: re(`^${FLEET}:1:15: /pollInterval: `) })),
  fc.constantFrom('":99999"', '":0"', '"127.0.0.1:65536"', '"x"', '"host :80"').map((v) => ({ name: `listen ${v}`, text: `gateway: { listen: ${v} }\n`, expect: re(`^${FLEET}:1:\\d+: /gateway/listen: `) })),
  fc.constantFrom('http://u:p@h:2019', 'http://h:2019/config', 'http://h?x', 'ftp://h', 'unix://rel.sock', 'http://h:0', 'javascript:alert(1)')
    .map((v) => ({ name: `admin ${v}`, text: `gateway: { admin: "${v}" }\n`, expect: re(`^${FLEET}:1:\\d+: /gateway/admin: `) })),
  fc.constantFrom('1e20', '0', '1.5', '"big"').map((v) => ({ name: `policies.maxBodyBytes ${v}`, text: `gateway: { policies: { maxBodyBytes: ${v} } }\n`, expect: re(`^${FLEET}:1:\\d+: /gateway/policies/maxBodyBytes: `) })),
  fc.constantFrom('SENTRY', '/atomo/', '/atomo/fleet/', '/atomo/fleet/POSTGRES_ADMIN_URL', '/atomo/x/../fleet/', '/', '//x')
    .map((v) => ({ name: `sharedSecrets ${v}`, text: `sharedSecrets: ["${v}"]\n`, expect: re(`^${FLEET}:1:\\d+: /sharedSecrets/0: `) })),
  fc.constantFrom('branch', 'driver').map((k) => ({ name: `duplicate ${k}`, text: `${k}: ${k === 'driver' ? 'process' : 'main'}\n${k}: ${k === 'driver' ? 'docker' : 'dev'}\n`, expect: re(`^${FLEET}:2:1: /${k}: duplicate key`) })),
  fc.constantFrom('\\x01', '\\x1b', '\\x7f', '\\n').map((c) => ({ name: `control ${c}`, text: `docker: { network: "a${c}b" }\n`, expect: re(`^${FLEET}:1:\\d+: /docker/network: contains a control character`) })),
  fc.constant({ name: 'credentials in the git URL', text: 'git: { url: "https://x:ghp_1@github.com/a/b.git" }\n', expect: re(`^${FLEET}:1:\\d+: /git/url: must not contain credentials`) }),
  fc.constant({ name: 'admin URL as a value', text: 'postgres: { admin: "postgres://a:b@h/db" }\n', expect: re(`^${FLEET}:1:\\d+: /postgres/admin: `) }),
];

/** n hostile fleet.yaml contents for `seed`, cycling through every case. */
export function hostileFleetYamls(seed: number, n: number): HostileFleetYaml[] {
  return Array.from({ length: n }, (_, i) => fc.sample(FLEET_CASES[i % FLEET_CASES.length], { seed: seed * 100_003 + i, numRuns: 1 })[0]);
}
