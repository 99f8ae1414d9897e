// An SSM Parameter Store stand-in that speaks the real wire protocol (AWS JSON 1.1 over HTTP, SigV4-signed), so
// tests drive the real @aws-sdk/client-ssm: its serializer, signer and error de-serializer all run.
// Error bodies follow the awsJson1_1 shape the SDK reads: HTTP 400 + `{"__type": "<Code>", "message": "..."}`.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export type SsmOp =
  | 'GetParameter'
  | 'GetParameters'
  | 'PutParameter'
  | 'GetParametersByPath'
  | 'DeleteParameter'
  | 'DeleteParameters';

/** `throttle`: answer ThrottlingException for the next `times` calls (Infinity: always), then serve normally. */
export type SsmFault = { kind: 'throttle'; times: number } | { kind: 'access-denied' };

export interface FakeParam {
  name: string;
  value: string;
  type: 'String' | 'StringList' | 'SecureString';
  version: number;
  lastModified: Date;
}

export interface FakeSsmOptions {
  failWith?: Partial<Record<SsmOp, SsmFault>>;
  /** The only credentials the fake accepts; signatures are verified with them. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export interface FakeSsm {
  endpoint: string;
  /** Stored parameters by name, for inspection. */
  params: Map<string, FakeParam>;
  /** Every request that reached an operation (after the signature check), in order. */
  calls: SsmOp[];
  /** Requests rejected for a missing or bad signature. */
  rejected: number;
  credentials: { accessKeyId: string; secretAccessKey: string };
  setFault(op: SsmOp, fault: SsmFault | null): void;
  stop(): Promise<void>;
}

export const FAKE_CREDENTIALS = { accessKeyId: 'AKIDFAKESSM000000000', secretAccessKey: 'fake-ssm-secret-key' };

class SsmError extends Error {
  constructor(readonly type: string, message: string) {
    super(message);
  }
}

const NAME = /^\/?[A-Za-z0-9_.\-/]{1,1011}$/;

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new SsmError('ValidationException', `Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive) and must use only a-zA-Z0-9_.-/`);
  }
  return name;
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** Recompute the SigV4 signature of a request and compare; returns an error to send, or null when valid. */
function checkSignature(req: IncomingMessage, body: Buffer, creds: FakeSsm['credentials']): SsmError | null {
  const auth = req.headers.authorization ?? '';
  if (!auth.startsWith('AWS4-HMAC-SHA256 Credential=')) {
    return new SsmError('MissingAuthenticationTokenException', 'Missing Authentication Token');
  }
  const m = /Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})/.exec(auth);
  const amzDate = req.headers['x-amz-date'];
  if (!m || typeof amzDate !== 'string') return new SsmError('IncompleteSignatureException', 'Authorization header is malformed');
  const [, keyId, day, region, service, signedHeaders, signature] = m;
  if (keyId !== creds.accessKeyId) {
    return new SsmError('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const headers = signedHeaders.split(';').map((h) => {
    const value = req.headers[h];
    const text = Array.isArray(value) ? value.join(',') : (value ?? '');
    return `${h}:${text.trim().replace(/\s+/g, ' ')}\n`;
  });
  const [path, query = ''] = (req.url ?? '/').split('?');
  const payloadHash = (req.headers['x-amz-content-sha256'] as string | undefined) ?? sha256(body);
  const canonical = [req.method, path, query, headers.join(''), signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = [day, region, service, 'aws4_request'].reduce<Buffer | string>((k, part) => hmac(k, part), `AWS4${creds.secretAccessKey}`);
  const expected = Buffer.from(hmac(key, toSign).toString('hex'));
  if (!timingSafeEqual(expected, Buffer.from(signature))) {
    return new SsmError('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.');
  }
  return null;
}

/** The shape SSM returns for a parameter; SecureString values stay opaque without decryption, as in AWS. */
function render(p: FakeParam, decrypt: boolean) {
  const value = p.type === 'SecureString' && !decrypt ? Buffer.from(sha256(p.value)).toString('base64') : p.value;
  return {
    Name: p.name,
    Type: p.type,
    Value: value,
    Version: p.version,
    LastModifiedDate: p.lastModified.getTime() / 1000,
    ARN: `arn:aws:ssm:us-east-1:123456789012:parameter${p.name.startsWith('/') ? '' : '/'}${p.name}`,
    DataType: 'text',
  };
}

type Input = Record<string, unknown>;

function names(input: Input): string[] {
  const list = input.Names;
  if (!Array.isArray(list) || list.length < 1 || list.length > 10) {
    throw new SsmError('ValidationException', 'Names: member must have length between 1 and 10');
  }
  return list.map(checkName);
}

function putParameter(params: Map<string, FakeParam>, input: Input) {
  const name = checkName(input.Name);
  const value = input.Value;
  if (typeof value !== 'string' || value.length < 1 || value.length > 4096) {
    throw new SsmError('ValidationException', 'Value: member must have length between 1 and 4096');
  }
  const existing = params.get(name);
  if (existing && input.Overwrite !== true) {
    throw new SsmError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
  }
  const type = (input.Type as FakeParam['type'] | undefined) ?? existing?.type;
  if (type !== 'String' && type !== 'StringList' && type !== 'SecureString') {
    throw new SsmError('ValidationException', 'Type: member must satisfy enum value set: [SecureString, StringList, String]');
  }
  const version = (existing?.version ?? 0) + 1;
  params.set(name, { name, value, type, version, lastModified: new Date() });
  return { Version: version, Tier: 'Standard' };
}

function byPath(params: Map<string, FakeParam>, input: Input) {
  const path = input.Path;
  if (typeof path !== 'string' || !path.startsWith('/')) throw new SsmError('ValidationException', 'The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/".');
  const max = (input.MaxResults as number | undefined) ?? 10;
  if (!Number.isInteger(max) || max < 1 || max > 10) throw new SsmError('ValidationException', 'MaxResults: member must have value less than or equal to 10');
  const base = path === '/' ? '/' : `${path.replace(/\/+$/, '')}/`;
  const after = typeof input.NextToken === 'string' ? Buffer.from(input.NextToken, 'base64url').toString('utf8') : '';
  const matching = [...params.values()]
    .filter((p) => p.name.startsWith(base) && (input.Recursive === true || !p.name.slice(base.length).includes('/')))
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .filter((p) => p.name > after);
  const page = matching.slice(0, max);
  const more = matching.length > max;
  return {
    Parameters: page.map((p) => render(p, input.WithDecryption === true)),
    ...(more ? { NextToken: Buffer.from(page[page.length - 1].name).toString('base64url') } : {}),
  };
}

function operate(params: Map<string, FakeParam>, op: SsmOp, input: Input): unknown {
  switch (op) {
    case 'GetParameter': {
      const p = params.get(checkName(input.Name));
      if (!p) throw new SsmError('ParameterNotFound', `Parameter ${String(input.Name)} not found.`);
      return { Parameter: render(p, input.WithDecryption === true) };
    }
    case 'GetParameters': {
      const wanted = names(input);
      return {
        Parameters: wanted.filter((n) => params.has(n)).map((n) => render(params.get(n)!, input.WithDecryption === true)),
        InvalidParameters: wanted.filter((n) => !params.has(n)),
      };
    }
    case 'PutParameter':
      return putParameter(params, input);
    case 'GetParametersByPath':
      return byPath(params, input);
    case 'DeleteParameter': {
      const name = checkName(input.Name);
      if (!params.delete(name)) throw new SsmError('ParameterNotFound', `Parameter ${name} not found.`);
      return {};
    }
    case 'DeleteParameters': {
      const wanted = names(input);
      const deleted = wanted.filter((n) => params.delete(n));
      return { DeletedParameters: deleted, InvalidParameters: wanted.filter((n) => !deleted.includes(n)) };
    }
  }
}

const OPS = new Set<string>(['GetParameter', 'GetParameters', 'PutParameter', 'GetParametersByPath', 'DeleteParameter', 'DeleteParameters']);

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: SsmError): void {
  send(res, 400, { __type: err.type, message: err.message });
}

/** Start the fake on 127.0.0.1 at a free port. */
export async function startFakeSsm(opts: FakeSsmOptions = {}): Promise<FakeSsm> {
  const faults = new Map<SsmOp, SsmFault>();
  for (const [op, f] of Object.entries(opts.failWith ?? {})) faults.set(op as SsmOp, { ...f });
  const fake = {
    params: new Map<string, FakeParam>(),
    calls: [] as SsmOp[],
    rejected: 0,
    credentials: opts.credentials ?? FAKE_CREDENTIALS,
  };

  // Answers the configured fault for this call, if any; throttle faults count down.
  function fault(op: SsmOp): SsmError | null {
    const f = faults.get(op);
    if (!f) return null;
    if (f.kind === 'access-denied') {
      return new SsmError('AccessDeniedException', `User: arn:aws:sts::123456789012:assumed-role/fleet is not authorized to perform: ssm:${op}`);
    }
    if (f.times <= 0) return null;
    f.times -= 1;
    return new SsmError('ThrottlingException', 'Rate exceeded');
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.replace(/^AmazonSSM\./, '');
      if (req.method !== 'POST' || !target.startsWith('AmazonSSM.') || !OPS.has(op)) {
        return sendError(res, new SsmError('UnknownOperationException', `unknown operation ${target || '(no X-Amz-Target)'}`));
      }
      if (req.headers['content-type'] !== 'application/x-amz-json-1.1') {
        return sendError(res, new SsmError('SerializationException', 'expected Content-Type application/x-amz-json-1.1'));
      }
      const authError = checkSignature(req, body, fake.credentials);
      if (authError) {
        fake.rejected += 1;
        return sendError(res, authError);
      }
      fake.calls.push(op as SsmOp);
      try {
        const injected = fault(op as SsmOp);
        if (injected) throw injected;
        const input = JSON.parse(body.toString('utf8') || '{}') as Input;
        send(res, 200, operate(fake.params, op as SsmOp, input));
      } catch (err) {
        if (err instanceof SsmError) sendError(res, err);
        else if (err instanceof SyntaxError) sendError(res, new SsmError('SerializationException', 'request body is not JSON'));
        else send(res, 500, { __type: 'InternalServerError', message: 'internal error' });
      }
    });
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const { port } = server.address() as AddressInfo;

  return Object.assign(fake, {
    endpoint: `http://127.0.0.1:${port}`,
    setFault(op: SsmOp, f: SsmFault | null) {
      if (f) faults.set(op, { ...f });
      else faults.delete(op);
    },
    stop() {
      server.closeAllConnections();
      return new Promise<void>((resolveClose) => server.close(() => resolveClose()));
    },
  });
}
