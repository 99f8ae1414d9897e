// Read the desired fleet at one commit straight from git objects (no checkout), re-parsing only the project
// folders whose tree id changed since a recent read.
import fs from 'node:fs';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { FleetError } from '../errors.ts';
import type { DesiredFleet, FleetConfig, ValidationIssue } from '../types.ts';
import { checkFleetConfig } from '../manifest/fleet-config.ts';
import { checkProject } from '../manifest/project.ts';
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
}

/** isomorphic-git location of a repository: a working tree with `.git`, or a bare repository. */
export function gitLocation(repoDir: string): { fs: typeof fs; dir?: string; gitdir: string } {
  const dotGit = join(repoDir, '.git');
  if (fs.existsSync(dotGit)) return { fs, dir: repoDir, gitdir: dotGit };
  return { fs, gitdir: repoDir };
}

const decoder = new TextDecoder('utf-8');
const MISSING_FLEET: ValidationIssue = {
  file: 'fleet.yaml', path: '', message: 'missing: add fleet.yaml at the repository root (see schemas/fleet.schema.json)',
};

export function createCommitReader(repoDir: string): CommitReader {
  const loc = gitLocation(repoDir);
  // One cache object shared by every isomorphic-git call: packfile indexes are loaded once.
  const cache = {};
  const projects = new Map<string, { check: ProjectCheck; used: number }>();
  const fleets = new Map<string, { result: ReturnType<typeof checkFleetConfig>; used: number }>();
  const stats: ReaderStats = { projectParses: 0, fleetParses: 0, reads: 0 };
  let generation = 0;

  async function readProject(folder: string, treeOid: string): Promise<ProjectCheck> {
    // Keyed by folder too: the same tree under another folder name gives another id check.
    const key = `${folder}\0${treeOid}`;
    const hit = projects.get(key);
    if (hit) {
      hit.used = generation;
      return hit.check;
    }
    stats.projectParses++;
    const check = await checkProject(folder, {
      readFile: (relPath) => readText(loc, cache, treeOid, relPath),
    });
    projects.set(key, { check, used: generation });
    return check;
  }

  async function readFleet(blobOid: string | undefined) {
    if (!blobOid) return { config: null, issues: [MISSING_FLEET] };
    const hit = fleets.get(blobOid);
    if (hit) {
      hit.used = generation;
      return hit.result;
    }
    stats.fleetParses++;
    const { blob } = await git.readBlob({ ...loc, oid: blobOid, cache });
    const result = checkFleetConfig(decoder.decode(blob));
    fleets.set(blobOid, { result, used: generation });
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
    const projectsEntry = root.find((e) => e.path === 'projects' && e.type === 'tree');
    const folders = projectsEntry
      ? (await gitCall('read projects/', () => git.readTree({ ...loc, oid: projectsEntry.oid, cache }))).tree
        .filter((e) => e.type === 'tree' && !e.path.startsWith('.'))
      : [];
    const checks = await mapLimit(folders, 16, (e) => readProject(e.path, e.oid));
    const fleetEntry = root.find((e) => e.path === 'fleet.yaml' && e.type === 'blob');
    const fleet = await readFleet(fleetEntry?.oid);
    prune();
    return { ...combineFleet(commit, checks), fleet: fleet.config, fleetIssues: fleet.issues };
  }

  // Keep what the last two reads used: the daemon reads consecutive commits, `fleet plan` reads base and head.
  function prune() {
    for (const [k, v] of projects) if (v.used < generation - 1) projects.delete(k);
    for (const [k, v] of fleets) if (v.used < generation - 1) fleets.delete(k);
  }

  return { read, stats };
}

async function readText(
  loc: ReturnType<typeof gitLocation>, cache: object, treeOid: string, filepath: string,
): Promise<string | null> {
  try {
    const { blob } = await git.readBlob({ ...loc, oid: treeOid, filepath, cache });
    return decoder.decode(blob);
  } catch (err) {
    const code = (err as { code?: string }).code;
    // A missing path, or a folder where a file was expected, reads as "no such file".
    if (code === 'NotFoundError' || code === 'ObjectTypeError') return null;
    throw new FleetError('GIT', `cannot read ${filepath}: ${(err as Error).message}`, { cause: err });
  }
}

async function gitCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new FleetError('GIT', `git: cannot ${what}: ${(err as Error).message}`, { cause: err });
  }
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
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
