// The last fleet read, kept across daemon restarts: written when the daemon stops, read when it starts, and used
// only for the same projects/ and fleet.yaml trees and the same validator (a hash of the sources that decide what
// is valid), so a restart does not parse every manifest again and a newer daemon never trusts an older verdict.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReadSnapshot } from './read.ts';

// What a verdict depends on: the manifest rules and what they import (secret references, notify settings, defaults),
// the JSON Schemas, the reader, and the lockfile (the versions of ajv, yaml and node-cron that check them).
const SOURCES = [
  ['../manifest/', /\.ts$/],
  ['../secrets/', /^refs\.ts$/],
  ['../notify/', /^config\.ts$/],
  ['../config/', /^defaults\.ts$/],
  ['../core/', /^servers\.ts$/],
  ['../../schemas/', /\.json$/],
  ['./', /^read\.ts$/],
  ['../../', /^package-lock\.json$/],
] as const;

let version: string | null = null;

/** Hash of the validator's sources (SOURCES). */
export function validatorVersion(): string {
  if (version) return version;
  const h = createHash('sha256');
  for (const [rel, pattern] of SOURCES) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    for (const name of readdirSync(dir).filter((n) => pattern.test(n)).sort()) h.update(name).update(readFileSync(join(dir, name)));
  }
  return (version = h.digest('hex'));
}

/** Write the snapshot (0600, atomically); a failure only costs the next start a full read. */
export function saveRead(path: string, snap: ReadSnapshot): void {
  try {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ validator: validatorVersion(), ...snap }), { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    // not worth failing a stop for
  }
}

/** The snapshot written by a daemon with the same validator, or null. */
export function loadRead(path: string): ReadSnapshot | null {
  try {
    const data = JSON.parse(readFileSync(path, 'utf8')) as ReadSnapshot & { validator?: string };
    if (data.validator !== validatorVersion() || typeof data.key !== 'string' || !data.read) return null;
    return { key: data.key, read: data.read };
  } catch {
    return null;
  }
}
