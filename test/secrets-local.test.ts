import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync, statSync, readdirSync, readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalSecretStore } from '../daemon/secrets/local.ts';
import { createSecretStore, secretRef, resolveRef, generateSecret, generatePassword } from '../daemon/secrets/index.ts';
import { createLogger } from '../daemon/log.ts';
import { isFleetError, type FleetError } from '../daemon/core/errors.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'fleet-secrets-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<FleetError> {
  const err = await p.then(() => null, (e: unknown) => e);
  if (!isFleetError(err)) throw new Error(`expected a FleetError, got ${String(err)}`);
  return err;
}

describe('local secret store', () => {
  it('round-trips put/get/has/delete', async () => {
    const store = createLocalSecretStore({ dir: join(root, 'secrets') });
    const ref = '/atomo/acme/JWT_SECRET';
    expect(await store.has(ref)).toBe(false);
    await store.put(ref, 'value-1');
    expect(await store.has(ref)).toBe(true);
    expect(await store.get(ref)).toBe('value-1');
    await store.put(ref, 'value-2');
    expect(await store.get(ref)).toBe('value-2');
    await store.delete(ref);
    expect(await store.has(ref)).toBe(false);
    await store.delete(ref); // deleting twice is fine
  });

  it('creates the folder 0700 and files 0600, leaving no temp files behind', async () => {
    const dir = join(root, 'nested', 'secrets');
    const store = createLocalSecretStore({ dir });
    await store.put('/atomo/acme/JWT_SECRET', 'v');
    await store.put('/atomo/acme/JWT_SECRET', 'w');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(statSync(join(dir, files[0])).mode & 0o777).toBe(0o600);
  });

  it('tightens an existing folder that was too open', async () => {
    const dir = join(root, 'open');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    await createLocalSecretStore({ dir }).put('/atomo/a/X', 'v');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('counts versions like SSM and lists names without values', async () => {
    const store = createLocalSecretStore({ dir: join(root, 's') });
    await store.put('/atomo/acme/JWT_SECRET', 'a');
    await store.put('/atomo/acme/JWT_SECRET', 'b');
    await store.put('/atomo/acme/JWT_SECRET', 'c');
    await store.put('/atomo/acme/db/URL', 'u');
    await store.put('/atomo/acmeplus/JWT_SECRET', 'x');
    const listed = await store.list('/atomo/acme');
    expect(listed.map((s) => [s.ref, s.version])).toEqual([
      ['/atomo/acme/JWT_SECRET', 3],
      ['/atomo/acme/db/URL', 1],
    ]);
    expect(JSON.stringify(listed)).not.toMatch(/"(a|b|c|u)"/);
    await store.delete('/atomo/acme/JWT_SECRET');
    await store.put('/atomo/acme/JWT_SECRET', 'd');
    expect((await store.list('/atomo/acme'))[0].version).toBe(1);
  });

  it('a missing secret is SECRET_MISSING naming the reference, the folder and the project', async () => {
    const dir = join(root, 's');
    const store = createLocalSecretStore({ dir, prefix: '/atomo' });
    await store.put('/atomo/acme/OTHER', 'some-stored-value');
    const err = await rejection(store.get('/atomo/acme/JWT_SECRET'));
    expect(err.code).toBe('SECRET_MISSING');
    expect(err.message).toBe(`secret /atomo/acme/JWT_SECRET is not in the local store (${dir})`);
    expect(err.project).toBe('acme');
    expect(err.message).not.toContain('some-stored-value');
  });

  it('getMany returns values and names every missing reference', async () => {
    const store = createLocalSecretStore({ dir: join(root, 's') });
    await store.put('/atomo/a/X', '1');
    await store.put('/atomo/a/Y', '2');
    expect(await store.getMany(['/atomo/a/X', '/atomo/a/Y'])).toEqual({ '/atomo/a/X': '1', '/atomo/a/Y': '2' });
    const err = await rejection(store.getMany(['/atomo/a/X', '/atomo/a/Z', '/atomo/a/W']));
    expect(err.code).toBe('SECRET_MISSING');
    expect(err.message).toContain('/atomo/a/Z, /atomo/a/W');
  });

  it('a damaged file is SECRET_STORE without its content', async () => {
    const dir = join(root, 's');
    const store = createLocalSecretStore({ dir });
    await store.put('/atomo/a/X', 'v');
    const [file] = readdirSync(dir);
    writeFileSync(join(dir, file), '{"value": "half-written-secret');
    const err = await rejection(store.get('/atomo/a/X'));
    expect(err.code).toBe('SECRET_STORE');
    expect(err.message).toContain('delete it and set /atomo/a/X again');
    expect(err.message).not.toContain('half-written-secret');
    // put repairs it
    await store.put('/atomo/a/X', 'fresh');
    expect(await store.get('/atomo/a/X')).toBe('fresh');
    expect(readFileSync(join(dir, file), 'utf8')).toContain('"version":1');
  });

  it.each(['relative/X', '/atomo//X', '/atomo/../etc/passwd', '/atomo/a/', '/atomo/a b', ''])(
    'rejects the bad reference %j with SECRET_STORE',
    async (ref) => {
      const store = createLocalSecretStore({ dir: join(root, 's') });
      expect((await rejection(store.put(ref, 'v'))).code).toBe('SECRET_STORE');
      expect((await rejection(store.get(ref))).code).toBe('SECRET_STORE');
    },
  );
});

describe('references', () => {
  it.each([
    ['/atomo', 'acme', 'JWT_SECRET', '/atomo/acme/JWT_SECRET'],
    ['/atomo', 'acme', '/shared/git/TOKEN', '/shared/git/TOKEN'],
    ['atomo/', 'acme', 'db/URL', '/atomo/acme/db/URL'],
    ['/org/prod', 'acme', 'JWT_SECRET', '/org/prod/acme/JWT_SECRET'],
  ])('resolveRef(%j, %j, %j) → %s', (prefix, id, ref, expected) => {
    expect(resolveRef(prefix, id, ref)).toBe(expected);
  });

  it('secretRef builds the per-project name', () => {
    expect(secretRef('/atomo', 'acme', 'JWT_SECRET')).toBe('/atomo/acme/JWT_SECRET');
  });

  it.each(['../other/JWT_SECRET', '/atomo/../x', 'a//b', '', 'x/'])('resolveRef rejects %j', (ref) => {
    let caught: unknown;
    try {
      resolveRef('/atomo', 'acme', ref);
    } catch (err) {
      caught = err;
    }
    expect(isFleetError(caught, 'SECRET_STORE')).toBe(true);
    expect((caught as Error).message).toMatch(/secret reference|empty secret reference/);
  });
});

describe('store registry and generators', () => {
  const log = createLogger({ level: 'silent' });

  it('creates the local store under the state folder', async () => {
    const store = createSecretStore({ type: 'local', prefix: '/atomo' }, { stateDir: root, log });
    expect(store.name).toBe('local');
    await store.put('/atomo/a/X', 'v');
    expect(readdirSync(join(root, 'secrets'))).toHaveLength(1);
  });

  it('an unknown type lists the known ones', () => {
    let caught: unknown;
    try {
      createSecretStore({ type: 'vault' as 'local', prefix: '/atomo' }, { stateDir: root, log });
    } catch (err) {
      caught = err;
    }
    expect(isFleetError(caught, 'UNKNOWN_COMPONENT')).toBe(true);
    expect((caught as Error).message).toBe('unknown secret store "vault"; known: local, ssm');
  });

  it('generates distinct, URL-safe secrets and passwords', () => {
    const secrets = new Set(Array.from({ length: 50 }, () => generateSecret()));
    expect(secrets.size).toBe(50);
    for (const s of secrets) expect(s).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const password = generatePassword();
    expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(new URL(`postgres://u:${password}@h/db`).password).toBe(password);
    expect(generateSecret(48)).toHaveLength(64);
  });
});
