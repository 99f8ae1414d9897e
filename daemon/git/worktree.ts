// The desired fleet as the files on disk say it (uncommitted edits included): what `fleet validate` checks.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { checkFleetConfig } from '../manifest/fleet-config.ts';
import { checkProject } from '../manifest/project.ts';
import { combineFleet, type ProjectCheck } from '../manifest/rules.ts';
import type { FleetRead } from './read.ts';

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/** Same result as the commit reader, from the working tree; `commit` is "worktree". */
export async function readWorktree(repoDir: string): Promise<FleetRead> {
  const projectsDir = join(repoDir, 'projects');
  const entries = await readdir(projectsDir, { withFileTypes: true }).catch(() => []);
  const checks: ProjectCheck[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const folder = join(projectsDir, entry.name);
    // git does not keep empty folders: skip them here too, so the worktree and a commit agree.
    if ((await readdir(folder)).length === 0) continue;
    checks.push(await checkProject(entry.name, { readFile: (rel) => readOrNull(join(folder, rel)) }));
  }
  const text = await readOrNull(join(repoDir, 'fleet.yaml'));
  const fleet = text === null
    ? { config: null, issues: [{ file: 'fleet.yaml', path: '', message: 'missing: add fleet.yaml at the repository root (see schemas/fleet.schema.json)' }] }
    : checkFleetConfig(text);
  return { ...combineFleet('worktree', checks), fleet: fleet.config, fleetIssues: fleet.issues };
}
