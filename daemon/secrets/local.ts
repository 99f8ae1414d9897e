// The laptop secret store: one JSON file per parameter in a private folder (0700, files 0600), each written
// atomically (temp file + rename) so a crash never leaves half a secret. Like SSM, every put bumps a version;
// only the count is kept, not old values.
import { mkdir, chmod, open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { FleetError } from '../core/errors.ts';
import { checkRef, projectOf, type FleetSecretStore, type SecretInfo } from './refs.ts';

export interface LocalStoreOptions {
  dir: string;
  /** fleet.yaml secretStore.prefix: lets errors name the project a reference belongs to. */
  prefix?: string;
}

interface StoredSecret {
  name: string;
  value: string;
  version: number;
  lastModified: string;
}

const SUFFIX = '.json';

// encodeURIComponent is injective and turns every `/` into %2F, so a reference maps to one flat file name.
function fileName(ref: string): string {
  return encodeURIComponent(ref) + SUFFIX;
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

export function createLocalSecretStore(opts: LocalStoreOptions): FleetSecretStore {
  const { dir } = opts;
  let ready: Promise<void> | null = null;

  // Create the folder once, and tighten it even when it already existed with wider permissions.
  function ensureDir(): Promise<void> {
    ready ??= (async () => {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
    })().catch((err) => {
      ready = null;
      throw new FleetError('SECRET_STORE', `cannot create the local secret folder ${dir}: ${(err as Error).message}`, { cause: err });
    });
    return ready;
  }

  async function read(ref: string): Promise<StoredSecret | null> {
    const path = join(dir, fileName(ref));
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw new FleetError('SECRET_STORE', `cannot read local secret file ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed = JSON.parse(text) as StoredSecret;
      if (typeof parsed.value !== 'string' || typeof parsed.version !== 'number') throw new Error('bad shape');
      return parsed;
    } catch {
      // No cause and no content: the file holds a secret.
      throw new FleetError('SECRET_STORE', `local secret file ${path} is damaged (not the expected JSON): delete it and set ${ref} again`, {
        project: projectOf(opts.prefix, ref),
      });
    }
  }

  async function writeAtomically(ref: string, record: StoredSecret): Promise<void> {
    const target = join(dir, fileName(ref));
    const tmp = join(dir, `.${fileName(ref)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.chmod(0o600); // a umask cannot widen 0600, but an odd one could narrow it to unreadable
      await handle.writeFile(JSON.stringify(record) + '\n', 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw new FleetError('SECRET_STORE', `cannot write local secret file ${target}: ${(err as Error).message}`, { cause: err });
    }
  }

  async function get(ref: string): Promise<string> {
    checkRef(ref);
    await ensureDir();
    const record = await read(ref);
    if (!record) {
      throw new FleetError('SECRET_MISSING', `secret ${ref} is not in the local store (${dir})`, { project: projectOf(opts.prefix, ref) });
    }
    return record.value;
  }

  async function put(ref: string, value: string): Promise<void> {
    checkRef(ref);
    if (typeof value !== 'string' || value === '') {
      throw new FleetError('SECRET_STORE', `refusing to store an empty value at ${ref}`, { project: projectOf(opts.prefix, ref) });
    }
    await ensureDir();
    const previous = await read(ref).catch(() => null);
    const record = { name: ref, value, version: (previous?.version ?? 0) + 1, lastModified: new Date().toISOString() };
    await writeAtomically(ref, record);
  }

  async function has(ref: string): Promise<boolean> {
    checkRef(ref);
    await ensureDir();
    return (await read(ref)) !== null;
  }

  async function remove(ref: string): Promise<void> {
    checkRef(ref);
    await ensureDir();
    await unlink(join(dir, fileName(ref))).catch((err) => {
      if (!isErrno(err, 'ENOENT')) throw new FleetError('SECRET_STORE', `cannot delete local secret ${ref}: ${(err as Error).message}`, { cause: err });
    });
  }

  async function list(path: string): Promise<SecretInfo[]> {
    const base = path === '/' ? '/' : `${checkRef(path)}/`;
    await ensureDir();
    const refs = (await readdir(dir))
      .filter((f) => f.endsWith(SUFFIX) && !f.startsWith('.'))
      .map((f) => decodeURIComponent(f.slice(0, -SUFFIX.length)))
      .filter((ref) => ref.startsWith(base))
      .sort();
    const found: SecretInfo[] = [];
    for (const ref of refs) {
      const record = await read(ref);
      if (record) found.push({ ref, version: record.version, lastModified: record.lastModified });
    }
    return found;
  }

  async function getMany(refs: string[]): Promise<Record<string, string>> {
    const values: Record<string, string> = {};
    const missing: string[] = [];
    for (const ref of new Set(refs)) {
      checkRef(ref);
      await ensureDir();
      const record = await read(ref);
      if (record) values[ref] = record.value;
      else missing.push(ref);
    }
    if (missing.length > 0) {
      throw new FleetError('SECRET_MISSING', `secrets not in the local store (${dir}): ${missing.join(', ')}`, {
        project: projectOf(opts.prefix, missing[0]),
      });
    }
    return values;
  }

  return { name: 'local', get, put, has, delete: remove, list, getMany };
}
