// Private files of the daemon: its state dir holds logs, pid files, schema copies, backups and (local store)
// secrets, so nothing in it may be listable or readable by other users of the machine.
import { chmodSync, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * Create `dir` (and parents) as 0700, and tighten it when it exists with wider bits. Traverse bits for others are
 * kept: an embedded Postgres running as user `postgres` under root needs them to reach its data dir, and they
 * let nobody list or read anything.
 */
export function privateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = statSync(dir).mode & 0o777;
  const wanted = 0o700 | (mode & 0o011);
  if (mode !== wanted) chmodSync(dir, wanted);
  return dir;
}

/** Open a file for appending as 0600, also when it already existed with wider bits. */
export function openPrivateAppend(path: string): number {
  const fd = openSync(path, 'a', 0o600);
  fchmodSync(fd, 0o600);
  return fd;
}
