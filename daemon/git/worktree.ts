// The desired fleet as the files on disk say it (uncommitted edits included): what `fleet validate` checks.
// It must agree with the commit reader, so it never follows a link: folders are listed with lstat semantics
// (readdir withFileTypes), files are opened with O_NOFOLLOW, and anything that is not a plain file or folder
// makes its project invalid, as a symlink or submodule entry does in a commit.
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { checkFleetConfig } from '../manifest/fleet-config.ts';
import { LINK_MESSAGES, LIMITS, MAX_FOLDER_ENTRIES, checkProject, linkedFolder, type FolderProblem } from '../manifest/project.ts';
import { combineFleet, type ProjectCheck } from '../manifest/rules.ts';
import type { ValidationIssue } from '../core/types.ts';
import type { FleetRead } from './read.ts';

const NOT_REGULAR = 'is not a regular file or folder; remove it';

/**
 * Bytes of a file, read without following a link and without blocking on a FIFO; at most `maxBytes` + 1 of them
 * (the caller refuses a larger file anyway). Null when there is no such file.
 */
async function readBytes(path: string, maxBytes: number): Promise<Uint8Array | null> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code === 'ELOOP') throw new Error(`${path} is a symlink`);
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) return null;
    if (!stat.isFile()) throw new Error(`${path} is not a regular file`);
    const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

/** Links, nested repositories and special files anywhere under a project folder, never following a link. */
async function folderProblems(dir: string): Promise<FolderProblem[]> {
  const problems: FolderProblem[] = [];
  const queue = [''];
  let seen = 0;
  while (queue.length) {
    const rel = queue.shift()!;
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      if (++seen > MAX_FOLDER_ENTRIES) return [...problems, { path: '', message: LINK_MESSAGES.tooMany }];
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      // A `.git` file or folder: a checked-out submodule or nested repository (a gitlink once committed).
      if (entry.name === '.git') problems.push({ path, message: LINK_MESSAGES.submodule });
      else if (entry.isSymbolicLink()) problems.push({ path, message: LINK_MESSAGES.symlink });
      else if (entry.isDirectory()) queue.push(path);
      else if (!entry.isFile()) problems.push({ path, message: NOT_REGULAR });
    }
  }
  return problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function kindOf(path: string): Promise<'missing' | 'symlink' | 'other' | 'dir' | 'file'> {
  const stat = await lstat(path).catch(() => null);
  if (!stat) return 'missing';
  if (stat.isSymbolicLink()) return 'symlink';
  return stat.isDirectory() ? 'dir' : stat.isFile() ? 'file' : 'other';
}

/** Same result as the commit reader, from the working tree; `commit` is "worktree". */
export async function readWorktree(repoDir: string): Promise<FleetRead> {
  const projectsDir = join(repoDir, 'projects');
  const layoutIssues: ValidationIssue[] = [];
  const projectsKind = await kindOf(projectsDir);
  if (projectsKind !== 'dir' && projectsKind !== 'missing') {
    const message = projectsKind === 'symlink' ? LINK_MESSAGES.symlinkFolder('projects') : LINK_MESSAGES.notFolder;
    layoutIssues.push({ file: 'projects', path: '', message });
  }
  const entries = projectsKind === 'dir' ? await readdir(projectsDir, { withFileTypes: true }).catch(() => []) : [];
  const checks: ProjectCheck[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    if (entry.isSymbolicLink()) {
      checks.push(linkedFolder(entry.name, 'symlink'));
      continue;
    }
    if (!entry.isDirectory()) continue;
    const folder = join(projectsDir, entry.name);
    // git does not keep empty folders: skip them here too, so the worktree and a commit agree.
    if ((await readdir(folder).catch(() => [])).length === 0) continue;
    checks.push(await checkProject(entry.name, {
      readFile: (rel, maxBytes) => readBytes(join(folder, rel), maxBytes ?? LIMITS.schema.maxBytes),
      problems: () => folderProblems(folder),
    }));
  }
  const fleet = await readFleetFile(join(repoDir, 'fleet.yaml'));
  return {
    ...combineFleet('worktree', checks, fleet.config), fleet: fleet.config, fleetIssues: [...layoutIssues, ...fleet.issues],
  };
}

async function readFleetFile(path: string): Promise<ReturnType<typeof checkFleetConfig>> {
  const issue = (message: string) => ({ config: null, issues: [{ file: 'fleet.yaml', path: '', message }] });
  try {
    const bytes = await readBytes(path, LIMITS.fleet.maxBytes);
    if (bytes === null) return issue('missing: add fleet.yaml at the repository root (see schemas/fleet.schema.json)');
    return checkFleetConfig(bytes);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return issue((await kindOf(path)) === 'symlink' ? LINK_MESSAGES.symlink : `cannot be read: ${code ?? (err as Error).message}`);
  }
}
