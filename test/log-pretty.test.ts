// `npm start` logs for people: pino-pretty lines (level, message, fields), with the same redaction as the JSON logs.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../daemon/log.ts';

const SECRET = `S3cr3t${randomBytes(8).toString('hex')}`;

function capture(pretty: boolean) {
  let out = '';
  const destination = new Writable({ write(chunk, _enc, done) { out += String(chunk); done(); } });
  const log = createLogger({ level: 'debug', destination, pretty });
  return { log, text: () => out };
}

describe('pretty logs', () => {
  it('prints a readable line per record: time, level, message, then the fields', () => {
    const { log, text } = capture(true);
    log.child({ component: 'driver' }).info({ project: 'blog', port: 4100 }, 'instance started');
    log.warn('gateway slow');
    const lines = text().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: instance started$/);
    expect(text()).toMatch(/^ {4}component: "driver"$/m);
    expect(text()).toMatch(/^ {4}project: "blog"$/m);
    expect(text()).toMatch(/^\[[\d:.]+\] WARN: gateway slow$/m);
    expect(text()).not.toMatch(/^\{/m);
    // No colour codes when the destination is not a terminal.
    expect(text()).not.toContain('\x1b[');
  });

  it('redacts secrets exactly as the JSON logger does', () => {
    const { log, text } = capture(true);
    log.info({ DATABASE_URL: `postgres://u:${SECRET}@h/db`, nested: { password: SECRET }, url: `postgres://u:${SECRET}@h/db` }, `connect postgres://u:${SECRET}@h/db`);
    log.child({ token: SECRET }).error({ err: new Error(`failed for postgres://u:${SECRET}@h/db`) }, 'boom');
    expect(text()).not.toContain(SECRET);
    expect(text()).toContain('[Redacted]');
  });

  it('stays JSON without pretty (production)', () => {
    const { log, text } = capture(false);
    log.info({ project: 'blog' }, 'hello');
    expect(JSON.parse(text().trim())).toMatchObject({ msg: 'hello', project: 'blog', level: 30 });
  });
});
