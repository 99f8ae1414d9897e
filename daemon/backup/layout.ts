// One folder layout for every backup, scheduled, manual or taken before a delete or a restore:
//   <backupDir>/<project>/<UTC time>-<kind>[-<commit>].dump     (pg_dump custom format, 0600, folders 0700)
//   <backupDir>/_registry/<UTC time>-<kind>.dump                 (the registry database)
// Time, kind and commit are in the name, so a listing needs no sidecar that could drift from its dump; a dump being
// written is `<name>.partial` until it is verified, so nothing half-written is ever listed or restored.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FleetError } from '../core/errors.ts';

/** `pre-move`: the dump a database move restores on the new server (taken with the instance stopped). */
export const BACKUP_KINDS = ['scheduled', 'manual', 'pre-delete', 'pre-restore', 'pre-move'] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

/** The registry's folder: a leading `_` is never a project id, so no project can share it. */
export const REGISTRY_FOLDER = '_registry';
const PROJECT_ID = /^[a-z][a-z0-9_]{0,39}$/;

export interface BackupInfo {
  /** Project id, or `_registry`. */
  project: string;
  /** File name, e.g. `2026-05-01T03-00-00.123Z-scheduled-3f2c1a9b0c4d.dump`. */
  name: string;
  file: string;
  kind: BackupKind;
  /** When the dump was started (ISO, UTC). */
  at: string;
  size: number;
  /** The commit the project ran (its applied commit) when the dump was taken, first 12 characters. */
  commit: string | null;
}

const NAME = /^(\d{4,}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})Z-(scheduled|manual|pre-delete|pre-restore|pre-move)(?:-([0-9a-f]{7,40}))?\.dump$/;

/** The file name of a dump started at `at`: sorts by time; the commit is kept when it looks like one. */
export function backupName(at: Date, kind: BackupKind, commit?: string | null): string {
  const time = at.toISOString().replace(/:/g, '-');
  const c = commit && /^[0-9a-f]{7,40}$/.test(commit) ? `-${commit.slice(0, 12)}` : '';
  return `${time}-${kind}${c}.dump`;
}

export function parseBackupName(name: string): { at: string; kind: BackupKind; commit: string | null } | null {
  const m = NAME.exec(name);
  if (!m) return null;
  const at = new Date(`${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z`);
  if (Number.isNaN(at.getTime())) return null;
  return { at: at.toISOString(), kind: m[6] as BackupKind, commit: m[7] ?? null };
}

/** `<backupDir>/<project>`, for a project id or the registry only: no other name reaches the file system. */
export function backupFolder(backupDir: string, project: string): string {
  if (project !== REGISTRY_FOLDER && !PROJECT_ID.test(project)) {
    throw new FleetError('USAGE', `"${project}" is not a project id (lower case letters, digits and _, starting with a letter)`);
  }
  return join(backupDir, project);
}

/** Every backup of a project, newest first. A missing folder is an empty list. */
export function listBackups(backupDir: string, project: string): BackupInfo[] {
  const dir = backupFolder(backupDir, project);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err: any) {
    if (err.code === 'ENOENT') return [];
    throw err;
  }
  const out: BackupInfo[] = [];
  for (const name of names) {
    const parsed = parseBackupName(name);
    if (!parsed) continue;
    const file = join(dir, name);
    try {
      const st = statSync(file);
      if (st.isFile()) out.push({ project, name, file, ...parsed, size: st.size });
    } catch {
      // pruned meanwhile
    }
  }
  return out.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
}

/**
 * The backup `--latest` restores: the newest scheduled, manual or pre-delete dump. A `pre-restore` dump (what a
 * restore replaced) is restored only when named, so a second `--latest` does not undo the first.
 */
export function latestBackup(backupDir: string, project: string): BackupInfo | null {
  return listBackups(backupDir, project).find((b) => b.kind !== 'pre-restore') ?? null;
}
