// One project folder → ProjectCheck: manifest parsed and validated, own rules applied, schema file loaded.
// The same code serves a git commit and the working tree; only the source differs. It never throws: whatever goes
// wrong in one folder becomes an issue on that folder, and the other projects go on.
import { createHash } from 'node:crypto';
import type { ValidationIssue } from '../core/types.ts';
import { capIssues, decodeText, locate, type TextLimit } from './parse.ts';
import { projectRules, schemaPathInFolder, type ProjectCheck } from './rules.ts';
import { validateManifestText } from './validate.ts';

export interface ProjectSource {
  /**
   * Content of a file inside the project folder (path relative to it), or null when there is no such file.
   * `maxBytes`: a source may stop reading after maxBytes + 1 bytes (the file is refused as too large anyway).
   */
  readFile(relPath: string, maxBytes?: number): Promise<string | Uint8Array | null>;
  /**
   * What the reader found while listing the folder that makes it unsafe to read (symlinks, submodules, special
   * files), each with a path relative to the folder. Any one makes the project invalid before a file is read.
   */
  problems?(): Promise<FolderProblem[]>;
}

export interface FolderProblem {
  /** Relative to the project folder. */
  path: string;
  message: string;
}

/** Sizes refused before parsing. */
export const LIMITS = Object.freeze({
  manifest: { maxBytes: 64 * 1024, label: '64 KiB' } satisfies TextLimit,
  schema: { maxBytes: 1024 * 1024, label: '1 MiB' } satisfies TextLimit,
  fleet: { maxBytes: 64 * 1024, label: '64 KiB' } satisfies TextLimit,
});

export interface CheckOptions {
  /** Raise (tests) or lower the 64 KiB cap on project.yaml. */
  maxManifestBytes?: number;
}

/** Entries walked in one project folder before giving up: a project needs a handful of files. */
export const MAX_FOLDER_ENTRIES = 10_000;

/** What the fleet says about a link or submodule where it expects a file or folder (same words in both readers). */
export const LINK_MESSAGES = {
  symlink: 'is a symlink; the fleet never follows links: commit the file itself',
  symlinkFolder: (path: string) => `is a symlink; the fleet never follows links: make ${path} a real folder`,
  submodule: 'is a git submodule; the fleet reads only files committed in this repository: remove it',
  submoduleFolder: 'is a git submodule; the fleet reads only files committed in this repository: make it a real folder',
  tooMany: `has more than ${MAX_FOLDER_ENTRIES} files and folders; keep only project.yaml, the schema and a few more`,
  notFolder: 'is not a folder; make it a folder with one folder per project',
};

/** `projects/<x>` that is a symlink or a submodule rather than a folder → the invalid project `x` (both readers). */
export function linkedFolder(name: string, kind: 'symlink' | 'submodule'): ProjectCheck {
  const file = `projects/${name}`;
  const message = kind === 'symlink' ? LINK_MESSAGES.symlinkFolder(file) : LINK_MESSAGES.submoduleFolder;
  return invalidFolder(name, [{ file, path: '', message }]);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A ProjectCheck for a folder that cannot be checked at all (a symlink, a submodule): only its issues. */
export function invalidFolder(folder: string, issues: ValidationIssue[]): ProjectCheck {
  return { folder, file: `projects/${folder}/project.yaml`, manifest: null, schema: null, issues: capIssues(issues), positions: {} };
}

export async function checkProject(folder: string, source: ProjectSource, opts: CheckOptions = {}): Promise<ProjectCheck> {
  const file = `projects/${folder}/project.yaml`;
  try {
    return await check(folder, file, source, opts);
  } catch (err) {
    const message = String((err as Error)?.message ?? err).split('\n')[0];
    return invalidFolder(folder, [{ file, path: '', message: `could not be read: ${message}; fix the file and run fleet validate again` }]);
  }
}

async function check(folder: string, file: string, source: ProjectSource, opts: CheckOptions): Promise<ProjectCheck> {
  const problems = (await source.problems?.()) ?? [];
  if (problems.length) {
    return invalidFolder(folder, problems.map((p) => ({
      file: p.path ? `projects/${folder}/${p.path}` : `projects/${folder}`, path: '', message: p.message,
    })));
  }
  const limit = { ...LIMITS.manifest, maxBytes: opts.maxManifestBytes ?? LIMITS.manifest.maxBytes };
  const raw = await source.readFile('project.yaml', limit.maxBytes);
  if (raw === null) {
    const issue = { file, path: '', message: `missing: every folder under projects/ needs a project.yaml (try \`fleet new ${folder}\`)` };
    return invalidFolder(folder, [issue]);
  }
  const decoded = decodeText(file, raw, limit);
  if ('issue' in decoded) return invalidFolder(folder, [decoded.issue]);
  const result = validateManifestText(file, decoded.text);
  if (!result.value) return invalidFolder(folder, result.issues);
  const manifest = result.value;
  const at = (pointer: string) => locate(result.parsed, pointer);
  const issues: ValidationIssue[] = projectRules(folder, file, manifest, at);
  const positions: ProjectCheck['positions'] = { '/id': at('/id'), '/hostname': at('/hostname') };
  manifest.aliases.forEach((_, i) => { positions[`/aliases/${i}`] = at(`/aliases/${i}`); });
  for (const name of Object.keys(manifest.secrets)) positions[`/secrets/${name}`] = at(`/secrets/${name}`);
  if (manifest.database?.server !== undefined) positions['/database/server'] = at('/database/server');
  manifest.placement?.constraints?.forEach((_, i) => { positions[`/placement/constraints/${i}`] = at(`/placement/constraints/${i}`); });
  manifest.placement?.preferences?.forEach((_, i) => { positions[`/placement/preferences/${i}/spread`] = at(`/placement/preferences/${i}/spread`); });

  let schema: ProjectCheck['schema'] = null;
  const inFolder = schemaPathInFolder(manifest.schema);
  if ('path' in inFolder) {
    const schemaFile = `projects/${folder}/${inFolder.path}`;
    const content = await source.readFile(inFolder.path, LIMITS.schema.maxBytes);
    const text = content === null ? null : decodeText(schemaFile, content, LIMITS.schema);
    if (text === null) {
      issues.push({ file, ...at('/schema'), path: '/schema', message: `schema file ${schemaFile} is missing; add it` });
    } else if ('issue' in text) {
      issues.push(text.issue);
    } else if (text.text.trim() === '') {
      issues.push({ file: schemaFile, line: 1, column: 1, path: '', message: 'schema file is empty; export at least one interface' });
    } else {
      schema = { path: schemaFile, content: text.text, digest: sha256(text.text) };
    }
  }
  // Frozen: the commit reader shares one check between reads of different commits.
  return Object.freeze({ folder, file, manifest: deepFreeze(manifest), schema, issues: capIssues(issues), positions });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
