// The operator token check (daemon/api/auth.ts) and the API's pure parts: what a request presents, how it is
// compared, what the API shows of a row (no secret values) and how it reads its query and body fields.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { OPERATOR_COOKIE, isOperator, presentedToken, tokenMatches } from '../daemon/api/auth.ts';
import { actorOf, eventsPage, eventsQuery, projectDetail, projectSummary } from '../daemon/api/views.ts';
import { restartRefusal, suspendRefusal } from '../daemon/api/operations.ts';
import { ApiError } from '../daemon/api/respond.ts';
import { operatorTokenRef } from '../daemon/api/token.ts';
import type { ProjectEvent, ProjectRecord } from '../daemon/registry/registry.ts';

const req = (headers: Record<string, string>) => ({ headers });

describe('presentedToken: where a request carries the token', () => {
  it.each<[string, Record<string, string>, string | undefined]>([
    ['bearer header', { authorization: 'Bearer abc' }, 'abc'],
    ['scheme in any case, extra spaces', { authorization: 'bEaReR    abc  ' }, 'abc'],
    ['basic auth is not a bearer token', { authorization: 'Basic YWJj' }, undefined],
    ['bearer without a token', { authorization: 'Bearer ' }, undefined],
    ['two tokens: refused, not the first one', { authorization: 'Bearer a b' }, undefined],
    ['the cookie', { cookie: `theme=dark; ${OPERATOR_COOKIE}=c%2Fd; x=1` }, 'c/d'],
    ['a cookie whose name only ends like ours', { cookie: `x${OPERATOR_COOKIE}=nope` }, undefined],
    ['the header wins over the cookie', { authorization: 'Bearer h', cookie: `${OPERATOR_COOKIE}=c` }, 'h'],
    ['a bad header falls back to the cookie', { authorization: 'Token h', cookie: `${OPERATOR_COOKIE}=c` }, 'c'],
    ['nothing', {}, undefined],
    ['a cookie that is not valid percent-encoding: no token, not an error', { cookie: `${OPERATOR_COOKIE}=%E0%A4%A` }, undefined],
  ])('%s', (_name, headers, want) => {
    expect(presentedToken(req(headers))).toBe(want);
  });
});

describe('tokenMatches: constant-time comparison semantics', () => {
  it.each<[string, string | undefined, string | undefined, boolean]>([
    ['equal', 'secret-token', 'secret-token', true],
    ['a prefix of it', 'secret', 'secret-token', false],
    ['it plus more', 'secret-token-x', 'secret-token', false],
    ['different case', 'SECRET-TOKEN', 'secret-token', false],
    ['nothing presented', undefined, 'secret-token', false],
    ['empty presented', '', 'secret-token', false],
    ['no token configured never matches, even an empty one', '', '', false],
    ['no token configured', 'x', undefined, false],
  ])('%s', (_name, presented, expected, want) => {
    expect(tokenMatches(presented, expected)).toBe(want);
  });

  it('matches exactly the equal strings, whatever their lengths (no length error from timingSafeEqual)', () => {
    fc.assert(fc.property(fc.string(), fc.string({ minLength: 1 }), (a, b) => tokenMatches(a, b) === (a === b)));
  });

  it('isOperator reads the request and compares', () => {
    expect(isOperator(req({ authorization: 'Bearer t0k' }), 't0k')).toBe(true);
    expect(isOperator(req({ authorization: 'Bearer t0k' }), 't0K')).toBe(false);
    expect(isOperator(req({}), 't0k')).toBe(false);
  });

  it('the token lives under the fleet path of the prefix', () => {
    expect(operatorTokenRef('/atomo')).toBe('/atomo/fleet/OPERATOR_TOKEN');
    expect(operatorTokenRef('/acme/')).toBe('/acme/fleet/OPERATOR_TOKEN');
  });
});

function rec(over: Partial<ProjectRecord> = {}): ProjectRecord {
  return {
    id: 'blog', displayName: 'Blog', hostname: 'blog.localhost', aliases: [], status: 'running', desiredState: 'running', upstream: '127.0.0.1:4100',
    schemaVersion: null, schemaDigest: null, observedCommit: null, appliedCommit: null, lastHealth: null, conditions: [],
    manifest: { id: 'blog', displayName: 'Blog', hostname: 'blog.localhost', aliases: [], state: 'running', schema: 'schema.ts', runtime: {}, env: { A: '1' }, secrets: { STRIPE_KEY: 'stripe-key' }, resources: {} },
    secretRefs: { DATABASE_URL: '/atomo/blog/DATABASE_URL', STRIPE_KEY: '/atomo/blog/stripe-key' }, port: 4100, updatedAt: '', databaseUrlRef: '/atomo/blog/DATABASE_URL',
    databaseName: 'atomo_blog', roleName: 'atomo_blog', schemaRef: { type: 'git', repo: '', path: '', ref: '' }, schemaHistory: [], env: {}, present: true,
    specHash: null, secretsVersion: 0, restarts: 0, provisionedConnections: 20, lastError: null, createdAt: '', restartGeneration: 0, restartRequestedBy: null, suspended: null,
    ...over,
  };
}

describe('what the API shows of a project', () => {
  it('secret names, never references or values', () => {
    const text = JSON.stringify([projectSummary(rec()), projectDetail(rec())]);
    expect(projectSummary(rec()).secrets).toEqual(['DATABASE_URL', 'STRIPE_KEY']);
    expect(projectDetail(rec()).manifest?.secrets).toEqual(['STRIPE_KEY']);
    expect(text).not.toContain('/atomo/blog/');
    expect(text).not.toContain('stripe-key');
  });
});

describe('operator requests that make no sense are refused with a sentence', () => {
  it.each<[string, Partial<ProjectRecord>, RegExp | null]>([
    ['running', {}, null],
    ['failed (crash loop): a restart is allowed', { status: 'failed' }, null],
    ['stopped', { desiredState: 'stopped', status: 'stopped' }, /blog is stopped \(state: stopped in projects\/blog\/project.yaml\): there is no instance to restart; set state: running/],
    ['folder removed', { present: false, status: 'stopped' }, /folder was removed from git/],
    ['deleted', { status: 'deleted' }, /blog is deleted/],
    ['suspended', { suspended: { by: 'alice', at: '2026-05-01T10:00:00Z' } }, /suspended by alice .*resume it first \(fleet resume blog\)/],
  ])('restart of a %s project', (_name, over, want) => {
    const got = restartRefusal(rec(over));
    if (want) expect(got).toMatch(want);
    else expect(got).toBeNull();
  });

  it('suspending a deleted project', () => {
    expect(suspendRefusal(rec({ status: 'deleted' }))).toMatch(/deleted: there is nothing to suspend/);
    expect(suspendRefusal(rec({ desiredState: 'stopped', status: 'stopped' }))).toBeNull();
  });
});

describe('query and body fields', () => {
  const q = (s: string) => eventsQuery(new URL(`http://d/api/v1/events${s}`));
  const status = (f: () => unknown) => { try { f(); return 0; } catch (e) { return (e as ApiError).status; } };

  it.each<[string, object | number]>([
    ['', { limit: 50 }],
    ['?project=blog&before=120&limit=10', { project: 'blog', before: 120, limit: 10 }],
    ['?project=&before=&limit=', { limit: 50 }],
    ['?limit=500', { limit: 500 }],
    ['?limit=501', 400], ['?limit=0', 400], ['?limit=-1', 400], ['?limit=1e3', 400], ['?before=abc', 400],
    ['?project=Blog', 400], ['?project=../x', 400],
  ])('events%s', (search, want) => {
    if (typeof want === 'number') expect(status(() => q(search))).toBe(want);
    else expect(q(search)).toEqual(want);
  });

  it('pages: next is the last id of a full page, null after the last', () => {
    const ev = (id: number): ProjectEvent => ({ id, projectId: 'blog', action: 'x', actor: null, commit: null, detail: null, at: '' });
    expect(eventsPage([ev(9), ev(8), ev(7)], 2)).toEqual({ events: [ev(9), ev(8)], next: 8 });
    expect(eventsPage([ev(9), ev(8)], 2)).toEqual({ events: [ev(9), ev(8)], next: null });
    expect(eventsPage([], 2)).toEqual({ events: [], next: null });
  });

  it.each<[unknown, string | number]>([
    [undefined, 'operator'], ['', 'operator'], ['alice', 'alice'], ['ops@example.com', 'ops@example.com'], ['renée', 'renée'],
    ['a b', 400], ['x'.repeat(65), 400], [42, 400], ['<script>', 400], ['line\nbreak', 400],
  ])('actor %j', (actor, want) => {
    if (typeof want === 'number') expect(status(() => actorOf({ actor }))).toBe(want);
    else expect(actorOf({ actor })).toBe(want);
  });
});
