import { describe, it, expect } from 'vitest';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { createLogger, redactUrl, scrubText } from '../daemon/log.ts';
import { FleetError } from '../daemon/core/errors.ts';

// A distinctive value per run: if it shows up anywhere in the output, a layer leaked it.
const SECRET = `S3cr3t${randomBytes(8).toString('hex')}`;

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const log = createLogger({ level: 'debug', destination });
  return { log, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const pgUrl = `postgres://atomo_acme:${SECRET}@127.0.0.1:5432/atomo_acme`;

describe('log redaction', () => {
  it.each([
    ['top-level password', { password: SECRET }],
    ['nested password', { db: { password: SECRET } }],
    ['secret', { secret: SECRET }],
    ['nested secret', { git: { secret: SECRET } }],
    ['token', { auth: { token: SECRET } }],
    ['DATABASE_URL', { DATABASE_URL: pgUrl }],
    ['env values', { env: { DATABASE_URL: pgUrl, JWT_SECRET: SECRET, STRIPE_API_KEY: SECRET } }],
    ['env deep in a spec', { spec: { id: 'acme', env: { JWT_SECRET: SECRET } } }],
    ['authorization header', { headers: { authorization: `Bearer ${SECRET}` } }],
    ['request headers', { req: { headers: { authorization: SECRET, cookie: `sid=${SECRET}` } } }],
    ['aws credentials', { credentials: { accessKeyId: 'AKID', secretAccessKey: SECRET } }],
    ['deeply nested', { a: { b: { c: { d: { password: SECRET } } } } }],
    ['inside arrays', { items: [{ token: SECRET }, { name: 'x' }] }],
    ['a URL under an innocent key', { target: { adminUrl: pgUrl } }],
    ['a libpq string', { conn: `host=127.0.0.1 user=fleet password=${SECRET} dbname=x` }],
  ])('%s never reaches the output', (_label, obj) => {
    const { log, lines } = capture();
    log.info(obj, 'logging an object');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(SECRET);
    expect(lines[0]).toContain('logging an object');
  });

  it('keeps non-secret fields and does not mutate the caller object', () => {
    const { log, records } = capture();
    const obj = { project: 'acme', env: { PORT: '3000', JWT_SECRET: SECRET } };
    log.info(obj, 'spec');
    const [record] = records();
    expect(record.project).toBe('acme');
    expect(record.env).toEqual({ PORT: '3000', JWT_SECRET: '[Redacted]' });
    expect(obj.env.JWT_SECRET).toBe(SECRET);
  });

  it('scrubs a postgres URL inside error messages, stacks and causes', () => {
    const { log, lines, records } = capture();
    const root = new Error(`connect ECONNREFUSED for ${pgUrl}`);
    const err = new FleetError('POSTGRES_UNREACHABLE', `cannot reach ${pgUrl}`, { project: 'acme', cause: root });
    log.error({ err }, 'provision failed');
    log.error(err);
    log.error({ error: new Error(`bad url ${pgUrl}`) }, 'other key');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).not.toContain(SECRET);
    const [first, second] = records();
    const serialized = first.err as { message: string; code: string; project: string; cause: { message: string } };
    expect(serialized.message).toBe('cannot reach postgres://atomo_acme:***@127.0.0.1:5432/atomo_acme');
    expect(serialized.code).toBe('POSTGRES_UNREACHABLE');
    expect(serialized.project).toBe('acme');
    expect(serialized.cause.message).toContain('127.0.0.1:5432');
    expect(second.msg).toBe('cannot reach postgres://atomo_acme:***@127.0.0.1:5432/atomo_acme');
  });

  it('scrubs URLs in message strings, format arguments and child bindings', () => {
    const { log, lines } = capture();
    log.info(`connecting to ${pgUrl}`);
    log.info('connecting to %s', pgUrl);
    log.child({ env: { JWT_SECRET: SECRET }, admin: pgUrl }).info('child line');
    log.child({ token: SECRET }).child({ project: 'acme' }).warn('grandchild line');
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(line).not.toContain(SECRET);
    expect(lines[0]).toContain('postgres://atomo_acme:***@127.0.0.1:5432');
    expect(lines[3]).toContain('acme');
  });
});

describe('redactUrl', () => {
  it.each([
    ['postgres://user:pw@host:5432/db', 'postgres://user:***@host:5432/db'],
    ['postgresql://u:p%40ss@h/db?sslmode=require', 'postgresql://u:***@h/db?sslmode=require'],
    ['postgres://:pw@h/db', 'postgres://:***@h/db'],
    ['postgres://u:p@ss/w@h/db', 'postgres://u:***@h/db'],
    ['postgres://user@host/db', 'postgres://user@host/db'],
    ['postgres://host:5432/db', 'postgres://host:5432/db'],
    ['embedded', 'embedded'],
  ])('%s → %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });

  it('scrubs every URL in a text', () => {
    const text = `a=postgres://a:one@h1/x, b="postgres://b:two@h2/y"`;
    const out = scrubText(text);
    expect(out).not.toMatch(/one|two/);
    expect(out).toContain('h2/y');
  });
});
