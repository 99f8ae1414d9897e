// Read the desired fleet at one commit straight from git objects (no checkout), re-parsing only the project
// folders whose tree id changed since a recent read.
import fs from 'node:fs';
import { join } from 'node:path';
import git, { type TreeEntry } from 'isomorphic-git';
import { gitFs } from './git-fs.ts';
import { FleetError } from '../core/errors.ts';
import { mapLimit } from '../core/concurrency.ts';
import type { DesiredFleet, FleetConfig, ValidationIssue } from '../core/types.ts';
import { checkFleetConfig, type FleetConfigResult } from '../manifest/fleet-config.ts';
import { LINK_MESSAGES, MAX_FOLDER_ENTRIES, checkProject, linkedFolder, type FolderProblem } from '../manifest/project.ts';
import { combineFleet, type ProjectCheck } from '../manifest/rules.ts';

/** The desired fleet at a commit, plus fleet.yaml (null with issues when missing or invalid). */
export interface FleetRead extends DesiredFleet {
  fleet: FleetConfig | null;
  fleetIssues: ValidationIssue[];
}

export interface ReaderStats {
  /** Project folders parsed and checked (cache misses). */
  projectParses: number;
  /** fleet.yaml parses (cache misses). */
  fleetParses: number;
  /** Commits read. */
  reads: number;
}

export interface CommitReader {
  /** Read a commit (full sha, or any revision `resolveRev` accepts). */
  read(commit: string): Promise<FleetRead>;
  readonly stats: ReaderStats;
  /** The last read and the trees it was made of (projects/ and fleet.yaml): see git/read-cache.ts. */
  snapshot(): ReadSnapshot | null;
}

/** A fleet read and the key of the trees it was read from. */
export interface ReadSnapshot {
  key: string;
  read: FleetRead;
}

/** isomorphic-git location of a repository: a working tree with `.git`, or a bare repository. */
export function gitLocation(repoDir: string): { fs: typeof fs; dir?: string; gitdir: string } {
  const dotGit = join(repoDir, '.git');
  if (fs.existsSync(dotGit)) return { fs: gitFs, dir: repoDir, gitdir: dotGit };
  return { fs: gitFs, gitdir: repoDir };
}

const MISSING_FLEET: ValidationIssue = {
  file: 'fleet.yaml', path: '', message: 'missing: add fleet.yaml at the repository root (see schemas/fleet.schema.json)',
};

// Tree entry modes: git stores a symlink as a blob holding the target path, a submodule as a commit id (gitlink).
const SYMLINK = '120000';
const GITLINK = '160000';

export function createCommitReader(repoDir: string, opts: { primed?: ReadSnapshot | null } = {}): CommitReader {
  const loc = gitLocation(repoDir);
  // One cache object shared by every isomorphic-git call: packfile indexes are loaded once.
  const cache = {};
  const projects = new Map<string, { check: ProjectCheck; used: number }>();
  const fleets = new Map<string, { result: ReturnType<typeof checkFleetConfig>; used: number }>();
  const stats: ReaderStats = { projectParses: 0, fleetParses: 0, reads: 0 };
  let generation = 0;
  // A primed snapshot (from a stopped daemon) answers a commit with the same trees without parsing them again.
  let last: ReadSnapshot | null = opts.primed ?? null;

  async function readProject(entry: TreeEntry): Promise<ProjectCheck | undefined> {
    const folder = entry.path;
    if (entry.mode === SYMLINK) return linkedFolder(folder, 'symlink');
    if (entry.mode === GITLINK || entry.type === 'commit') return linkedFolder(folder, 'submodule');
    if (entry.type !== 'tree') return undefined;
    const treeOid = entry.oid;
    // Keyed by folder too: the same tree under another folder name gives another id check.
    const key = `${folder}\0${treeOid}`;
    const hit = projects.get(key);
    if (hit) {
      hit.used = generation;
      return hit.check;
    }
    stats.projectParses++;
    // The folder's tree is read once: the walk for links keeps its top, whose files are then read by blob id
    // (a path lookup would read the tree again for each file).
    let top: TreeEntry[] | null = null;
    // checkProject never throws: an unreadable blob, a link or a submodule makes only this folder invalid.
    const check = await checkProject(folder, {
      readFile: (relPath) => {
        if (!top || relPath.includes('/')) return readBytes(loc, cache, treeOid, relPath);
        const entry = top.find((e) => e.path === relPath);
        // A missing file, or a folder where a file was expected, reads as "no such file" (as readBytes answers).
        return entry?.type === 'blob' ? readBlobAt(loc, cache, entry.oid, relPath) : Promise.resolve(null);
      },
      problems: () => treeProblems(loc, cache, treeOid, (tree) => { top = tree; }),
    });
    projects.set(key, { check, used: generation });
    return check;
  }

  async function readFleet(entry: TreeEntry | undefined): Promise<FleetConfigResult> {
    if (!entry) return { config: null, issues: [MISSING_FLEET] };
    if (entry.mode === SYMLINK) return { config: null, issues: [{ file: 'fleet.yaml', path: '', message: LINK_MESSAGES.symlink }] };
    const hit = fleets.get(entry.oid);
    if (hit) {
      hit.used = generation;
      return hit.result;
    }
    stats.fleetParses++;
    let result: FleetConfigResult;
    try {
      const { blob } = await git.readBlob({ ...loc, oid: entry.oid, cache });
      result = checkFleetConfig(blob);
    } catch (err) {
      result = { config: null, issues: [{ file: 'fleet.yaml', path: '', message: `cannot be read from git: ${(err as Error).message}` }] };
    }
    fleets.set(entry.oid, { result, used: generation });
    return result;
  }

  async function read(rev: string): Promise<FleetRead> {
    generation++;
    stats.reads++;
    const commit = /^[0-9a-f]{40}$/.test(rev) ? rev : await resolveRev(repoDir, rev);
    const root = await gitCall(`read commit ${commit}`, async () => {
      const { commit: c } = await git.readCommit({ ...loc, oid: commit, cache });
      return (await git.readTree({ ...loc, oid: c.tree, cache })).tree;
    });
    const projectsEntry = root.find((e) => e.path === 'projects');
    const fleetEntry = root.find((e) => e.path === 'fleet.yaml' && e.type === 'blob');
    // Neither projects/ nor fleet.yaml changed (a README commit): the fleet read is the last one, at this commit.
    const key = `${projectsEntry?.mode}:${projectsEntry?.oid}\0${fleetEntry?.mode}:${fleetEntry?.oid}`;
    if (last?.key === key) return { ...last.read, commit };
    const layoutIssues: ValidationIssue[] = projectsEntry && projectsEntry.type !== 'tree' ? [{
      file: 'projects', path: '',
      message: projectsEntry.mode === SYMLINK ? LINK_MESSAGES.symlinkFolder('projects') : LINK_MESSAGES.notFolder,
    }] : [];
    const folders = projectsEntry?.type === 'tree'
      ? (await gitCall('read projects/', () => git.readTree({ ...loc, oid: projectsEntry.oid, cache }))).tree
        .filter((e) => !e.path.startsWith('.'))
      : [];
    const checks = (await mapLimit(folders, 16, readProject)).filter((c): c is ProjectCheck => c !== undefined);
    const fleet = await readFleet(fleetEntry);
    prune();
    const read = {
      ...combineFleet(commit, checks, fleet.config), fleet: fleet.config, fleetIssues: [...layoutIssues, ...fleet.issues],
    };
    last = { key, read };
    return read;
  }

  // Keep what the last two reads used: the daemon reads consecutive commits, `fleet plan` reads base and head.
  function prune() {
    for (const [k, v] of projects) if (v.used < generation - 1) projects.delete(k);
    for (const [k, v] of fleets) if (v.used < generation - 1) fleets.delete(k);
  }

  return { read, stats, snapshot: () => last };
}

async function readBytes(
  loc: ReturnType<typeof gitLocation>, cache: object, treeOid: string, filepath: string,
): Promise<Uint8Array | null> {
  try {
    const { blob } = await git.readBlob({ ...loc, oid: treeOid, filepath, cache });
    return blob;
  } catch (err) {
    const code = (err as { code?: string }).code;
    // A missing path, or a folder where a file was expected, reads as "no such file".
    if (code === 'NotFoundError' || code === 'ObjectTypeError') return null;
    throw new FleetError('GIT', `cannot read ${filepath}: ${(err as Error).message}`, { cause: err });
  }
}

/** A blob by its id (`filepath` names it in errors). */
async function readBlobAt(loc: ReturnType<typeof gitLocation>, cache: object, oid: string, filepath: string): Promise<Uint8Array> {
  try {
    return (await git.readBlob({ ...loc, oid, cache })).blob;
  } catch (err) {
    throw new FleetError('GIT', `cannot read ${filepath}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Symlinks and submodules anywhere under a project's tree (breadth first, every tree read once). `onTop` is given
 * the entries of the tree itself.
 */
async function treeProblems(loc: ReturnType<typeof gitLocation>, cache: object, treeOid: string, onTop?: (tree: TreeEntry[]) => void): Promise<FolderProblem[]> {
  const problems: FolderProblem[] = [];
  const queue: { oid: string; prefix: string }[] = [{ oid: treeOid, prefix: '' }];
  let seen = 0;
  while (queue.length) {
    const { oid, prefix } = queue.shift()!;
    const { tree } = await git.readTree({ ...loc, oid, cache });
    if (oid === treeOid && prefix === '') onTop?.(tree);
    for (const e of tree) {
      if (++seen > MAX_FOLDER_ENTRIES) return [...problems, { path: '', message: LINK_MESSAGES.tooMany }];
      const path = `${prefix}${e.path}`;
      if (e.mode === SYMLINK) problems.push({ path, message: LINK_MESSAGES.symlink });
      else if (e.mode === GITLINK || e.type === 'commit') problems.push({ path, message: LINK_MESSAGES.submodule });
      else if (e.type === 'tree') queue.push({ oid: e.oid, prefix: `${path}/` });
    }
  }
  return problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function gitCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new FleetError('GIT', `git: cannot ${what}: ${(err as Error).message}`, { cause: err });
  }
}


/**
 * A revision → full commit sha, with isomorphic-git only: branch and tag names (local or remote, e.g.
 * `origin/main`), `HEAD`, full or abbreviated shas, each optionally followed by `~N`, `^` or `^N`.
 */
export async function resolveRev(repoDir: string, rev: string): Promise<string> {
  const loc = gitLocation(repoDir);
  const cache = {};
  const match = /^(.*?)((?:[~^][0-9]*)*)$/.exec(rev.trim());
  const base = match?.[1] ?? '';
  const suffix = match?.[2] ?? '';
  const unknown = () => new FleetError('GIT', `unknown revision "${rev}": not a branch, tag or commit in ${repoDir}`);
  if (!base) throw unknown();
  let oid: string | undefined;
  try {
    oid = await git.resolveRef({ ...loc, ref: base });
  } catch {
    if (/^[0-9a-f]{4,40}$/i.test(base)) {
      oid = await git.expandOid({ ...loc, oid: base.toLowerCase(), cache }).catch(() => undefined);
    }
  }
  if (!oid) throw unknown();
  oid = await peelToCommit(loc, cache, oid).catch(() => { throw unknown(); });
  for (const step of suffix.match(/[~^][0-9]*/g) ?? []) {
    const n = step.length > 1 ? Number(step.slice(1)) : 1;
    oid = step[0] === '~' ? await ancestor(loc, cache, oid, n, rev) : await nthParent(loc, cache, oid, n, rev);
  }
  return oid;
}

async function peelToCommit(loc: ReturnType<typeof gitLocation>, cache: object, oid: string): Promise<string> {
  const obj = await git.readObject({ ...loc, oid, cache });
  if (obj.type === 'commit') return oid;
  if (obj.type === 'tag') return peelToCommit(loc, cache, (await git.readTag({ ...loc, oid, cache })).tag.object);
  throw new Error(`${oid} is a ${obj.type}, not a commit`);
}

async function nthParent(loc: ReturnType<typeof gitLocation>, cache: object, oid: string, n: number, rev: string) {
  if (n === 0) return oid;
  const { commit } = await git.readCommit({ ...loc, oid, cache });
  const parent = commit.parent[n - 1];
  if (!parent) throw new FleetError('GIT', `revision "${rev}" does not exist: ${oid.slice(0, 7)} has no parent ${n}`);
  return parent;
}

async function ancestor(loc: ReturnType<typeof gitLocation>, cache: object, oid: string, n: number, rev: string) {
  let current = oid;
  for (let i = 0; i < n; i++) current = await nthParent(loc, cache, current, 1, rev);
  return current;
}

/**
 * Schema digests each project had in the `depth` commits before `commit` (oldest first, no repeats, the
 * digest at `commit` itself left out): the history `actualFromDesired` needs to tell a revert from a change.
 */
export async function schemaHistoryBefore(
  repoDir: string, reader: CommitReader, commit: string, depth = 50,
): Promise<Record<string, string[]>> {
  const loc = gitLocation(repoDir);
  const log = await gitCall(`read history of ${commit}`, () => git.log({ ...loc, ref: commit, depth: depth + 1 }));
  const history: Record<string, string[]> = {};
  for (const entry of log.slice(1).reverse()) {
    const read = await reader.read(entry.oid);
    for (const p of read.projects) {
      const list = (history[p.id] ??= []);
      if (!list.includes(p.schema.digest)) list.push(p.schema.digest);
    }
  }
  return history;
}
