// The production secret store: AWS SSM Parameter Store, SecureString parameters under `/atomo/<project>/...`.
// Retries are ours, not the SDK's (the client runs with maxAttempts 1), so there is one bounded, testable loop
// and no multiplication of SDK attempts by ours. Nothing here ever falls back to a plaintext source.
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { Logger } from 'pino';
import { FleetError } from '../core/errors.ts';
import { checkRef, projectOf, type FleetSecretStore, type SecretInfo } from './refs.ts';

export interface SsmStoreOptions {
  region?: string;
  /** An SSM-compatible endpoint (tests, LocalStack); else AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL / AWS default. */
  endpoint?: string;
  /** Static credentials; absent → the standard AWS chain (env, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  log: Logger;
  /** fleet.yaml secretStore.prefix: lets errors name the project a parameter belongs to. */
  prefix?: string;
  /** Attempts per call for throttling and transient faults (default 5). */
  maxAttempts?: number;
  /** First retry delay in ms, doubled each attempt (default 200). */
  retryDelayMs?: number;
  /** Cap on one retry delay in ms (default 5000). */
  maxRetryDelayMs?: number;
}

const THROTTLING = new Set(['ThrottlingException', 'TooManyUpdates', 'Throttling', 'RequestLimitExceeded']);
const BAD_CREDENTIALS = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'MissingAuthenticationTokenException',
  'IncompleteSignatureException',
  'CredentialsProviderError',
]);

interface AwsError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  code?: string;
}

function isTransient(err: AwsError): boolean {
  if (THROTTLING.has(err.name ?? '')) return true;
  const status = err.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500;
  // No HTTP answer at all: the connection failed (refused, reset, timed out).
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'TimeoutError'].includes(err.code ?? err.name ?? '');
}

/** A copy of an SDK error whose message can be kept as `cause` without carrying the value being written. */
function scrubbed(err: unknown, value?: string): unknown {
  if (value === undefined || !(err instanceof Error) || !err.message.includes(value)) return err;
  const copy = new Error(err.message.split(value).join('***'));
  copy.name = err.name;
  return copy;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

export function createSsmSecretStore(opts: SsmStoreOptions): FleetSecretStore & { close(): void } {
  const region = opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new FleetError('SECRET_STORE', 'the SSM secret store needs an AWS region: set secretStore.region in fleet.yaml or AWS_REGION');
  }
  const endpoint = opts.endpoint ?? process.env.AWS_ENDPOINT_URL_SSM ?? process.env.AWS_ENDPOINT_URL;
  // The AWS SDK is loaded on the first call: a daemon on another store never pays its memory (about 20 MiB).
  let loaded: Promise<{ client: SSMClient; m: typeof import('@aws-sdk/client-ssm') }> | null = null;
  const sdk = () => (loaded ??= import('@aws-sdk/client-ssm').then((m) => ({
    m, client: new m.SSMClient({ region, endpoint, credentials: opts.credentials, maxAttempts: 1 }),
  })));
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 5);
  const baseDelay = opts.retryDelayMs ?? 200;
  const maxDelay = opts.maxRetryDelayMs ?? 5000;
  const log = opts.log;

  /** Translate an SDK error for `what` (a parameter name or path) into a FleetError; never includes a value. */
  function translate(err: unknown, op: string, what: string, value?: string): FleetError {
    const e = (err ?? {}) as AwsError;
    const ctx = { cause: scrubbed(err, value), project: projectOf(opts.prefix, what) };
    const name = e.name ?? 'Error';
    if (name === 'ParameterNotFound') {
      return new FleetError('SECRET_MISSING', `secret ${what} is not in SSM Parameter Store (${region}); create it with: aws ssm put-parameter --type SecureString --name ${what} --value ...`, ctx);
    }
    if (name === 'AccessDeniedException') {
      return new FleetError('SECRET_STORE', `access denied to ${what}: check the IAM policy for the path (ssm:${op} on its ARN, and kms:Decrypt for SecureString)`, ctx);
    }
    if (BAD_CREDENTIALS.has(name)) {
      return new FleetError('SECRET_STORE', `SSM rejected the AWS credentials (${name}) for ${op} on ${what}: check AWS_PROFILE / AWS_ACCESS_KEY_ID or the instance role`, ctx);
    }
    if (THROTTLING.has(name)) {
      return new FleetError('SECRET_STORE', `SSM throttled ${op} on ${what} after ${maxAttempts} attempts: lower the request rate or raise the SSM throughput limit`, ctx);
    }
    if (isTransient(e)) {
      return new FleetError('SECRET_STORE', `SSM unreachable or failing (${name}) for ${op} on ${what} after ${maxAttempts} attempts${endpoint ? ` at ${endpoint}` : ''}`, ctx);
    }
    return new FleetError('SECRET_STORE', `SSM ${op} on ${what} failed: ${name}`, ctx);
  }

  /** Run one SDK call with capped exponential backoff (jittered) on throttling and transient faults. */
  async function call<T>(op: string, what: string, fn: () => Promise<T>, value?: string): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const e = (err ?? {}) as AwsError;
        if (!isTransient(e) || attempt >= maxAttempts) throw translate(err, op, what, value);
        const ceiling = Math.min(maxDelay, baseDelay * 2 ** (attempt - 1));
        const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
        log.warn({ op, param: what, attempt, delayMs: delay, error: e.name }, 'SSM call failed; retrying');
        await sleep(delay);
      }
    }
  }

  async function get(ref: string): Promise<string> {
    const name = checkRef(ref);
    const out = await call('GetParameter', name, () => sdk().then(({ client, m }) => client.send(new m.GetParameterCommand({ Name: name, WithDecryption: true }))));
    const value = out.Parameter?.Value;
    if (value === undefined) throw new FleetError('SECRET_STORE', `SSM returned no value for ${name}`);
    return value;
  }

  async function has(ref: string): Promise<boolean> {
    const name = checkRef(ref);
    try {
      // Without decryption: existence needs neither kms:Decrypt nor the plaintext.
      await call('GetParameter', name, () => sdk().then(({ client, m }) => client.send(new m.GetParameterCommand({ Name: name, WithDecryption: false }))));
      return true;
    } catch (err) {
      if (err instanceof FleetError && err.code === 'SECRET_MISSING') return false;
      throw err;
    }
  }

  async function put(ref: string, value: string): Promise<void> {
    const name = checkRef(ref);
    if (typeof value !== 'string' || value === '') {
      throw new FleetError('SECRET_STORE', `refusing to store an empty value at ${name}: SSM needs 1 to 4096 characters`);
    }
    const out = await call(
      'PutParameter',
      name,
      () => sdk().then(({ client, m }) => client.send(new m.PutParameterCommand({ Name: name, Value: value, Type: 'SecureString', Overwrite: true }))),
      value,
    );
    log.info({ param: name, version: out.Version }, 'secret written to SSM');
  }

  async function remove(ref: string): Promise<void> {
    const name = checkRef(ref);
    try {
      await call('DeleteParameter', name, () => sdk().then(({ client, m }) => client.send(new m.DeleteParameterCommand({ Name: name }))));
      log.info({ param: name }, 'secret deleted from SSM');
    } catch (err) {
      // Deleting what is already gone is fine: callers converge, they do not check first.
      if (!(err instanceof FleetError && err.code === 'SECRET_MISSING')) throw err;
    }
  }

  async function list(path: string): Promise<SecretInfo[]> {
    const base = path === '/' ? '/' : checkRef(path);
    const found: SecretInfo[] = [];
    let token: string | undefined;
    do {
      const page = await call('GetParametersByPath', base, () =>
        sdk().then(({ client, m }) => client.send(new m.GetParametersByPathCommand({ Path: base, Recursive: true, WithDecryption: false, MaxResults: 10, NextToken: token }))),
      );
      for (const p of page.Parameters ?? []) {
        found.push({ ref: p.Name ?? '', version: p.Version ?? 0, lastModified: p.LastModifiedDate?.toISOString() ?? '' });
      }
      token = page.NextToken;
    } while (token);
    return found.sort((a, b) => (a.ref < b.ref ? -1 : 1));
  }

  async function getMany(refs: string[]): Promise<Record<string, string>> {
    const names = [...new Set(refs.map((r) => checkRef(r)))];
    const values: Record<string, string> = {};
    const missing: string[] = [];
    // GetParameters takes at most 10 names per call.
    for (let i = 0; i < names.length; i += 10) {
      const chunk = names.slice(i, i + 10);
      const out = await call('GetParameters', chunk.join(', '), () =>
        sdk().then(({ client, m }) => client.send(new m.GetParametersCommand({ Names: chunk, WithDecryption: true }))),
      );
      for (const p of out.Parameters ?? []) if (p.Name && p.Value !== undefined) values[p.Name] = p.Value;
      missing.push(...(out.InvalidParameters ?? []));
    }
    if (missing.length > 0) {
      throw new FleetError('SECRET_MISSING', `secrets not in SSM Parameter Store (${region}): ${missing.join(', ')}`, {
        project: projectOf(opts.prefix, missing[0]),
      });
    }
    return values;
  }

  return { name: 'ssm', get, has, put, delete: remove, list, getMany, close: () => void loaded?.then(({ client }) => client.destroy()) };
}
