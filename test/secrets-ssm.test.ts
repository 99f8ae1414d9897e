// The SSM store driven through the real @aws-sdk/client-ssm against a wire-compatible fake (signing verified).
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { Writable } from 'node:stream';
import { SSMClient, PutParameterCommand, DeleteParametersCommand } from '@aws-sdk/client-ssm';
import { startFakeSsm, FAKE_CREDENTIALS, type FakeSsm, type SsmOp } from './fakes/ssm-server.ts';
import { createSsmSecretStore } from '../daemon/secrets/ssm.ts';
import { createSecretStore } from '../daemon/secrets/index.ts';
import { createLogger } from '../daemon/log.ts';
import { isFleetError, type FleetError } from '../daemon/core/errors.ts';
import { freePort } from './harness/ports.ts';

const VALUE = 'ssm-test-value-7f3a9c';
let fake: FakeSsm;
let logLines: string[];

function logger() {
  const destination = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  return createLogger({ level: 'debug', destination });
}

function store(extra: { maxAttempts?: number; endpoint?: string } = {}) {
  return createSsmSecretStore({
    region: 'us-east-1',
    endpoint: extra.endpoint ?? fake.endpoint,
    credentials: FAKE_CREDENTIALS,
    log: logger(),
    prefix: '/atomo',
    maxAttempts: extra.maxAttempts ?? 4,
    retryDelayMs: 1,
    maxRetryDelayMs: 5,
  });
}

const count = (op: SsmOp) => fake.calls.filter((c) => c === op).length;

async function rejection(p: Promise<unknown>): Promise<FleetError> {
  const err = await p.then(() => null, (e: unknown) => e);
  if (!isFleetError(err)) throw new Error(`expected a FleetError, got ${String(err)}`);
  return err;
}

beforeEach(async () => {
  fake = await startFakeSsm();
  logLines = [];
});
afterEach(async () => {
  await fake.stop();
  // No log line of any test may carry a stored value.
  expect(logLines.join('')).not.toContain(VALUE);
});

describe('SSM secret store', () => {
  it('round-trips put/get/has/delete as SecureString', async () => {
    const s = store();
    const ref = '/atomo/acme/JWT_SECRET';
    expect(await s.has(ref)).toBe(false);
    await s.put(ref, VALUE);
    expect(fake.params.get(ref)).toMatchObject({ type: 'SecureString', value: VALUE, version: 1 });
    expect(await s.has(ref)).toBe(true);
    expect(await s.get(ref)).toBe(VALUE);
    await s.delete(ref);
    expect(fake.params.has(ref)).toBe(false);
    expect(await s.has(ref)).toBe(false);
    await s.delete(ref); // already gone: fine
    s.close();
  });

  it('increments the version on every put', async () => {
    const s = store();
    for (const v of ['a', 'b', 'c']) await s.put('/atomo/acme/JWT_SECRET', v);
    expect(fake.params.get('/atomo/acme/JWT_SECRET')?.version).toBe(3);
    expect(await s.list('/atomo/acme')).toMatchObject([{ ref: '/atomo/acme/JWT_SECRET', version: 3 }]);
    expect(await s.get('/atomo/acme/JWT_SECRET')).toBe('c');
  });

  it('lists a path through GetParametersByPath pages (recursive, names only)', async () => {
    const s = store();
    const expected: string[] = [];
    for (let i = 0; i < 23; i++) {
      const ref = `/atomo/acme/${i < 20 ? 'K' : 'nested/K'}${String(i).padStart(2, '0')}`;
      expected.push(ref);
      await s.put(ref, `${VALUE}-${i}`);
    }
    await s.put('/atomo/acmeplus/K', VALUE);
    const listed = await s.list('/atomo/acme');
    expect(listed.map((p) => p.ref)).toEqual(expected.sort());
    expect(count('GetParametersByPath')).toBe(3); // 10 + 10 + 3
    expect(JSON.stringify(listed)).not.toContain(VALUE);
  });

  it('reads many references across GetParameters chunks and names the missing ones', async () => {
    const s = store();
    const refs = Array.from({ length: 12 }, (_, i) => `/atomo/acme/K${i}`);
    for (const ref of refs) await s.put(ref, `v-${ref}`);
    const values = await s.getMany(refs);
    expect(Object.keys(values)).toHaveLength(12);
    expect(values['/atomo/acme/K11']).toBe('v-/atomo/acme/K11');
    expect(count('GetParameters')).toBe(2);
    const err = await rejection(s.getMany([...refs, '/atomo/acme/NOPE']));
    expect(err.code).toBe('SECRET_MISSING');
    expect(err.message).toContain('/atomo/acme/NOPE');
    expect(err.project).toBe('acme');
  });

  it('a missing parameter is SECRET_MISSING naming it', async () => {
    const err = await rejection(store().get('/atomo/acme/DATABASE_URL'));
    expect(err.code).toBe('SECRET_MISSING');
    expect(err.project).toBe('acme');
    expect(err.message).toContain('secret /atomo/acme/DATABASE_URL is not in SSM Parameter Store (us-east-1)');
    expect(count('GetParameter')).toBe(1); // not retried
  });

  it('retries throttling with backoff and then succeeds', async () => {
    const s = store();
    await s.put('/atomo/acme/JWT_SECRET', VALUE);
    fake.setFault('GetParameter', { kind: 'throttle', times: 2 });
    expect(await s.get('/atomo/acme/JWT_SECRET')).toBe(VALUE);
    expect(count('GetParameter')).toBe(3);
    expect(logLines.filter((l) => l.includes('retrying'))).toHaveLength(2);
  });

  it('gives up on endless throttling after maxAttempts with SECRET_STORE', async () => {
    fake.setFault('PutParameter', { kind: 'throttle', times: Infinity });
    const err = await rejection(store({ maxAttempts: 4 }).put('/atomo/acme/JWT_SECRET', VALUE));
    expect(err.code).toBe('SECRET_STORE');
    expect(err.message).toMatch(/^SSM throttled PutParameter on \/atomo\/acme\/JWT_SECRET after 4 attempts/);
    expect(err.message).not.toContain(VALUE);
    expect(count('PutParameter')).toBe(4);
  });

  it('access denied is SECRET_STORE at once, without retries or fallback', async () => {
    const s = store();
    fake.setFault('GetParameter', { kind: 'access-denied' });
    fake.setFault('PutParameter', { kind: 'access-denied' });
    const err = await rejection(s.get('/atomo/acme/JWT_SECRET'));
    expect(err.code).toBe('SECRET_STORE');
    expect(err.message).toMatch(/^access denied to \/atomo\/acme\/JWT_SECRET: check the IAM policy for the path/);
    expect(count('GetParameter')).toBe(1);
    const putErr = await rejection(s.put('/atomo/acme/JWT_SECRET', VALUE));
    expect(putErr.code).toBe('SECRET_STORE');
    expect(putErr.message).not.toContain(VALUE);
    expect(count('PutParameter')).toBe(1);
    expect(fake.params.size).toBe(0);
  });

  it('the fake rejects unsigned requests and wrong signatures', async () => {
    const res = await fetch(fake.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.PutParameter' },
      body: JSON.stringify({ Name: '/atomo/acme/X', Value: 'v', Type: 'SecureString' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { __type: string }).__type).toBe('MissingAuthenticationTokenException');
    const wrong = createSsmSecretStore({
      region: 'us-east-1',
      endpoint: fake.endpoint,
      credentials: { accessKeyId: FAKE_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-key' },
      log: logger(),
    });
    const err = await rejection(wrong.get('/atomo/acme/X'));
    expect(err.code).toBe('SECRET_STORE');
    expect(err.message).toContain('InvalidSignatureException');
    expect(fake.rejected).toBe(2);
    expect(fake.calls).toEqual([]);
    expect(fake.params.size).toBe(0);
  });

  it('the fake keeps SSM semantics for Overwrite false and DeleteParameters', async () => {
    const client = new SSMClient({ region: 'us-east-1', endpoint: fake.endpoint, credentials: FAKE_CREDENTIALS, maxAttempts: 1 });
    await client.send(new PutParameterCommand({ Name: '/a/X', Value: '1', Type: 'String' }));
    await expect(client.send(new PutParameterCommand({ Name: '/a/X', Value: '2', Type: 'String' }))).rejects.toMatchObject({
      name: 'ParameterAlreadyExists',
    });
    const out = await client.send(new DeleteParametersCommand({ Names: ['/a/X', '/a/Y'] }));
    expect(out.DeletedParameters).toEqual(['/a/X']);
    expect(out.InvalidParameters).toEqual(['/a/Y']);
    client.destroy();
  });

  it('an unreachable endpoint is SECRET_STORE after bounded attempts', async () => {
    const err = await rejection(store({ endpoint: `http://127.0.0.1:${await freePort()}`, maxAttempts: 3 }).get('/atomo/a/X'));
    expect(err.code).toBe('SECRET_STORE');
    expect(err.message).toContain('after 3 attempts');
  });
});

describe('SSM store configuration', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ENDPOINT_URL_SSM', 'AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  it('takes region, endpoint and credentials from the standard AWS environment', async () => {
    process.env.AWS_REGION = 'eu-west-1';
    process.env.AWS_ENDPOINT_URL_SSM = fake.endpoint;
    process.env.AWS_ACCESS_KEY_ID = FAKE_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = FAKE_CREDENTIALS.secretAccessKey;
    const s = createSecretStore({ type: 'ssm', prefix: '/atomo' }, { stateDir: '/nonexistent', log: logger() });
    expect(s.name).toBe('ssm');
    await s.put('/atomo/acme/JWT_SECRET', VALUE);
    expect(await s.get('/atomo/acme/JWT_SECRET')).toBe(VALUE);
    const err = await rejection(s.get('/atomo/acme/NOPE'));
    expect(err.message).toContain('(eu-west-1)');
  });

  it('without any region it fails at creation with what to set', () => {
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    let caught: unknown;
    try {
      createSsmSecretStore({ log: logger() });
    } catch (err) {
      caught = err;
    }
    expect(isFleetError(caught, 'SECRET_STORE')).toBe(true);
    expect((caught as Error).message).toContain('set secretStore.region in fleet.yaml or AWS_REGION');
  });
});
