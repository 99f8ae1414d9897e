// Webhook signature and response: table-driven, with a signature computed independently of the code under test
// (GitHub's documented example) so a wrong HMAC setup cannot pass.
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifySignature, webhookResponse } from '../daemon/git/webhook.ts';

const SECRET = 'It\'s a Secret to Everybody';
const BODY = Buffer.from('Hello, World!');
// From GitHub's docs "Validating webhook deliveries".
const GITHUB_EXAMPLE = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

function sign(secret: string, body: Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

describe('verifySignature', () => {
  it.each([
    ['GitHub documented example', SECRET, GITHUB_EXAMPLE, true],
    ['upper-case hex', SECRET, GITHUB_EXAMPLE.toUpperCase().replace('SHA256=', 'sha256='), true],
    ['wrong secret', 'other secret', GITHUB_EXAMPLE, false],
    ['one digit changed', SECRET, GITHUB_EXAMPLE.replace(/7$/, '8'), false],
    ['missing header', SECRET, undefined, false],
    ['empty header', SECRET, '', false],
    ['sha1 prefix', SECRET, GITHUB_EXAMPLE.replace('sha256=', 'sha1='), false],
    ['no prefix', SECRET, GITHUB_EXAMPLE.slice('sha256='.length), false],
    ['short hex', SECRET, GITHUB_EXAMPLE.slice(0, -2), false],
    ['not hex', SECRET, `sha256=${'z'.repeat(64)}`, false],
    ['empty secret', '', sign('', BODY), false],
  ])('%s', (_name, secret, header, expected) => {
    expect(verifySignature(secret, BODY, header)).toBe(expected);
  });

  it('rejects a signature of a different body', () => {
    expect(verifySignature(SECRET, Buffer.from('Hello, World?'), GITHUB_EXAMPLE)).toBe(false);
  });
});

describe('webhookResponse', () => {
  const push = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', after: 'a'.repeat(40) }));
  const headers = (event: string | undefined, signature: string | undefined) => ({
    'x-github-event': event,
    'x-hub-signature-256': signature,
    'content-type': 'application/json',
  });

  it('a valid push schedules a sync', () => {
    expect(webhookResponse('s3cret', headers('push', sign('s3cret', push)), push)).toEqual({
      status: 202,
      sync: true,
      body: { ok: true, message: 'sync scheduled' },
    });
  });

  it('accepts headers in any case', () => {
    const res = webhookResponse('s3cret', { 'X-GitHub-Event': 'push', 'X-Hub-Signature-256': sign('s3cret', push) }, push);
    expect(res).toMatchObject({ status: 202, sync: true });
  });

  it.each([
    ['wrong signature', headers('push', sign('other', push))],
    ['missing signature', headers('push', undefined)],
  ])('%s → 401, no sync', (_name, h) => {
    const res = webhookResponse('s3cret', h, push);
    expect(res).toMatchObject({ status: 401, sync: false, body: { ok: false } });
    expect(res.body.message).toContain('X-Hub-Signature-256');
  });

  it('a daemon without a webhook secret refuses every hook', () => {
    expect(webhookResponse('', headers('push', sign('', push)), push)).toMatchObject({ status: 401, sync: false });
  });

  it('ping → 202 without sync', () => {
    const ping = Buffer.from('{"zen":"Keep it logically awesome."}');
    expect(webhookResponse('s3cret', headers('ping', sign('s3cret', ping)), ping)).toEqual({
      status: 202,
      sync: false,
      body: { ok: true, message: 'pong' },
    });
  });

  it('other events are acknowledged without sync; a missing event is a 400', () => {
    expect(webhookResponse('s3cret', headers('issues', sign('s3cret', push)), push)).toMatchObject({ status: 202, sync: false });
    expect(webhookResponse('s3cret', headers(undefined, sign('s3cret', push)), push)).toMatchObject({ status: 400, sync: false });
  });
});
