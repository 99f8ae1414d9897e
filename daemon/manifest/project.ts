// One project folder → ProjectCheck: manifest parsed and validated, own rules applied, schema file loaded.
// The same code serves a git commit and the working tree; only `readFile` differs.
import { createHash } from 'node:crypto';
import type { ValidationIssue } from '../types.ts';
import { locate } from './parse.ts';
import { projectRules, schemaPathInFolder, type ProjectCheck } from './rules.ts';
import { validateManifestText } from './validate.ts';

export interface ProjectSource {
  /** Text of a file inside the project folder (path relative to it), or null when there is no such file. */
  readFile(relPath: string): Promise<string | null>;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function checkProject(folder: string, source: ProjectSource): Promise<ProjectCheck> {
  const file = `projects/${folder}/project.yaml`;
  const text = await source.readFile('project.yaml');
  if (text === null) {
    const issue = { file, path: '', message: `missing: every folder under projects/ needs a project.yaml (try \`fleet new ${folder}\`)` };
    return { folder, file, manifest: null, schema: null, issues: [issue], positions: {} };
  }
  const result = validateManifestText(file, text);
  if (!result.value) {
    return { folder, file, manifest: null, schema: null, issues: result.issues, positions: {} };
  }
  const manifest = result.value;
  const at = (pointer: string) => locate(result.parsed, pointer);
  const issues: ValidationIssue[] = projectRules(folder, file, manifest, at);
  const positions: ProjectCheck['positions'] = { '/id': at('/id'), '/hostname': at('/hostname') };
  manifest.aliases.forEach((_, i) => { positions[`/aliases/${i}`] = at(`/aliases/${i}`); });

  let schema: ProjectCheck['schema'] = null;
  const inFolder = schemaPathInFolder(manifest.schema);
  if ('path' in inFolder) {
    const schemaFile = `projects/${folder}/${inFolder.path}`;
    const content = await source.readFile(inFolder.path);
    if (content === null) {
      issues.push({ file, ...at('/schema'), path: '/schema', message: `schema file ${schemaFile} is missing; add it` });
    } else if (content.trim() === '') {
      issues.push({ file: schemaFile, line: 1, column: 1, path: '', message: 'schema file is empty; export at least one interface' });
    } else {
      schema = { path: schemaFile, content, digest: sha256(content) };
    }
  }
  // Frozen: the commit reader shares one check between reads of different commits.
  return Object.freeze({ folder, file, manifest: deepFreeze(manifest), schema, issues, positions });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
