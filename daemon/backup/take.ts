// Taking a backup now: of one project (manual, scheduled, before a delete or a restore) or of the registry. The
// CLI, the scheduler and the operator API all call these, so every dump has the same format, checks and layout.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { FleetError } from '../core/errors.ts';
import { backupDatabase, databaseNames } from '../provision/database.ts';
import type { Registry } from '../registry/registry.ts';
import { dumpDatabase, hide, type OnProgress } from './archive.ts';
import { REGISTRY_FOLDER, backupFolder, backupName, parseBackupName, type BackupInfo, type BackupKind } from './layout.ts';

export interface TakeBackup {
  adminUrl: string;
  backupDir: string;
  project: string;
  kind: BackupKind;
  /** Given: the project must be registered, its applied commit names the dump, and `actor` records a `backup` event. */
  registry?: Registry;
  actor?: string;
  /** The commit in the dump's name (default: the row's applied commit). */
  commit?: string | null;
  onProgress?: OnProgress;
}

/** What a dump file is, read from its name and size. */
export function describeBackup(file: string, project: string): BackupInfo {
  const name = basename(file);
  const parsed = parseBackupName(name);
  if (!parsed) throw new FleetError('BACKUP', `${name} is not a backup file name`);
  return { project, name, file, ...parsed, size: statSync(file).size };
}

/** One dump of a project's database now, verified, in the project's backup folder. */
export async function takeBackup(o: TakeBackup): Promise<BackupInfo> {
  let commit = o.commit;
  if (o.registry) {
    const rec = await o.registry.get(o.project);
    if (!rec) throw new FleetError('USAGE', `no project "${o.project}" in the registry; fleet status lists them`);
    if (rec.status === 'deleted' && rec.provisionedConnections === null) {
      throw new FleetError('USAGE', `project ${o.project} is deleted and its database dropped: nothing to back up`, { project: o.project });
    }
    commit ??= rec.appliedCommit;
  }
  const file = await backupDatabase(o.adminUrl, databaseNames(o.project), backupFolder(o.backupDir, o.project), { kind: o.kind, commit, onProgress: o.onProgress });
  const info = describeBackup(file, o.project);
  if (o.registry && o.actor) {
    await o.registry.event(o.project, 'backup', { actor: o.actor, commit: commit ?? null, detail: { name: info.name, file, kind: o.kind, size: info.size } });
  }
  return info;
}

/** A dump of the registry database (the control plane: projects, events, requests) under `<backupDir>/_registry`. */
export async function backupRegistry(o: { registryUrl: string; backupDir: string; kind: BackupKind; onProgress?: OnProgress }): Promise<BackupInfo> {
  const dir = backupFolder(o.backupDir, REGISTRY_FOLDER);
  const file = join(dir, backupName(new Date(), o.kind));
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    await dumpDatabase(o.registryUrl, file, { onProgress: o.onProgress });
  } catch (err: any) {
    const detail = hide(String(err.message || err.code).trim(), decodeURIComponent(new URL(o.registryUrl).password));
    throw new FleetError('BACKUP', `backup of the registry failed: ${detail}`);
  }
  return describeBackup(file, REGISTRY_FOLDER);
}
