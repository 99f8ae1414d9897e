// Backups and restore: what the CLI, the scheduler and the operator API call.
//   takeBackup / backupRegistry   one verified custom-format dump now (take.ts)
//   listBackups / latestBackup    the one folder layout, read back (layout.ts)
//   requestRestore / waitForRequest  ask the running daemon to restore a project, and wait for it (requests.ts)
export { backupRegistry, describeBackup, takeBackup, type TakeBackup } from './take.ts';
export { BACKUP_KINDS, REGISTRY_FOLDER, latestBackup, listBackups, type BackupInfo, type BackupKind } from './layout.ts';
export { requestRestore, waitForRequest, type RestoreOutcome, type RestoreSource } from './requests.ts';
