// pg_dump and pg_restore as child processes: a custom-format dump written 0600 and verified before it counts, a
// restore with its progress. Passwords travel in PGPASSWORD only, never in argv (the process list) or a message.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';

/** Debian's client tools for the version the fleet runs (the embedded server is 15); else whatever is on PATH. */
export function pgBin(name: 'pg_dump' | 'pg_restore'): string {
  for (const p of [`/usr/lib/postgresql/15/bin/${name}`, `/usr/bin/${name}`]) if (existsSync(p)) return p;
  return name;
}

/** How far a dump or restore is: steps done out of the total, when known. */
export interface Progress {
  phase: 'dump' | 'restore';
  done: number;
  total: number | null;
}
export type OnProgress = (p: Progress) => void;

/** A connection URL without its password (for argv), and the password (for PGPASSWORD). */
export function splitPassword(url: string): { url: string; password: string } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { url: u.toString(), password };
}

export function hide(text: string, secret: string): string {
  return secret ? text.split(secret).join('[Redacted]') : text;
}

/** The TOC of `pg_restore --list`: how many entries it restores, and the database it was dumped from. */
export function tocEntries(list: string): { entries: number; database: string | null } {
  let entries = 0;
  let database: string | null = null;
  for (const line of list.split('\n')) {
    const db = /^;\s+dbname:\s+(\S+)\s*$/.exec(line);
    if (db) database = db[1];
    else if (line.trim() && !line.startsWith(';')) entries++;
  }
  return { entries, database };
}

/** A line of `pg_restore --verbose` that stands for one TOC entry restored. */
export function restoreProgress(line: string): boolean {
  return /^pg_restore: (creating|processing data for|executing) /.test(line);
}

interface Run {
  env: NodeJS.ProcessEnv;
  /** A file descriptor that receives stdout; stdout is collected otherwise. */
  stdoutFd?: number;
  /** Each stderr line; returns true when it is progress chatter, not an error to report. */
  onLine?: (line: string) => boolean;
}

function run(bin: string, args: string[], o: Run): Promise<string> {
  return new Promise((resolveRun, reject) => {
    let stdout = '';
    let errors = '';
    let rest = '';
    const child = spawn(bin, args, { env: o.env, stdio: ['ignore', o.stdoutFd ?? 'pipe', 'pipe'] });
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    const line = (l: string) => {
      if (!l.trim() || o.onLine?.(l)) return;
      if (errors.length < 4000) errors += `${l}\n`;
    };
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (rest + d).split('\n');
      rest = parts.pop() ?? '';
      parts.forEach(line);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      line(rest);
      if (code === 0) resolveRun(stdout);
      else reject(new Error(errors.trim() || `${bin.split('/').pop()} exited with ${code ?? signal}`));
    });
  });
}

/** Check that `file` is a readable custom-format archive (`pg_restore --list`); its TOC. */
export async function verifyArchive(file: string): Promise<{ entries: number; database: string | null }> {
  return tocEntries(await run(pgBin('pg_restore'), ['--list', file], { env: process.env }));
}

/**
 * pg_dump -Fc of `url` into `file`: written as `<file>.partial`, created 0600 before pg_dump writes a byte (its
 * own --file would be 0644), flushed, verified with `pg_restore --list`, and only then renamed to `file`. Any
 * failure removes it: no empty, partial or unreadable dump is ever left to be mistaken for a backup.
 */
export async function dumpDatabase(url: string, file: string, o: { tables?: number | null; onProgress?: OnProgress } = {}): Promise<{ entries: number }> {
  const { url: bare, password } = splitPassword(url);
  const partial = `${file}.partial`;
  const fd = openSync(partial, 'wx', 0o600);
  let done = 0;
  try {
    try {
      await run(pgBin('pg_dump'), ['--format=custom', '--verbose', '--no-password', bare], {
        env: { ...process.env, PGPASSWORD: password }, stdoutFd: fd,
        onLine: (l) => {
          if (/^pg_dump: dumping contents of table /.test(l)) o.onProgress?.({ phase: 'dump', done: ++done, total: o.tables ?? null });
          return l.startsWith('pg_dump: ') && !/^pg_dump: (error|warning|fatal|detail|hint)/i.test(l);
        },
      });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    let toc;
    try {
      toc = await verifyArchive(partial);
    } catch (err) {
      throw new Error(`the dump did not verify (pg_restore --list): ${(err as Error).message}`);
    }
    renameSync(partial, file);
    return { entries: toc.entries };
  } catch (err) {
    rmSync(partial, { force: true });
    throw new Error(hide((err as Error).message, password));
  }
}

/**
 * pg_restore of `file` into the (empty) database at `url`, stopping at the first error. Objects belong to the
 * role `url` logs in as (--no-owner) and no grant from the dump is replayed (--no-privileges): the project's
 * database has no other role to grant to. `total` is the TOC size, for progress.
 */
export async function restoreArchive(url: string, file: string, o: { total?: number; onProgress?: OnProgress } = {}): Promise<void> {
  const { url: bare, password } = splitPassword(url);
  let done = 0;
  try {
    await run(pgBin('pg_restore'), ['--exit-on-error', '--no-owner', '--no-privileges', '--verbose', '--no-password', `--dbname=${bare}`, file], {
      env: { ...process.env, PGPASSWORD: password },
      onLine: (l) => {
        if (restoreProgress(l)) o.onProgress?.({ phase: 'restore', done: Math.min(++done, o.total ?? done), total: o.total ?? null });
        return l.startsWith('pg_restore: ') && !/^pg_restore: (error|warning|fatal|detail|hint)/i.test(l);
      },
    });
  } catch (err) {
    throw new Error(hide((err as Error).message, password));
  }
}
