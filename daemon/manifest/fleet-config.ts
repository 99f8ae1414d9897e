// fleet.yaml: fleet-wide settings, validated and given their defaults, returned as a frozen FleetConfig.
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { FleetError } from '../errors.ts';
import type { FleetConfig, ValidationIssue } from '../types.ts';
import { formatIssue, locate } from './parse.ts';
import { validateYaml } from './validate.ts';

export interface FleetConfigResult {
  config: FleetConfig | null;
  issues: ValidationIssue[];
}

/** Validate fleet.yaml text. `file` is the name used in messages (relative to the repo root). */
export function checkFleetConfig(text: string, file = 'fleet.yaml'): FleetConfigResult {
  const result = validateYaml<FleetConfig>('fleet.schema.json', file, text);
  if (!result.value) return { config: null, issues: result.issues };
  const config = result.value;
  const issues: ValidationIssue[] = [];
  // A token in the clone URL would end up in logs and the registry: it belongs in git.tokenSecret.
  if (config.git?.url && /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(config.git.url)) {
    const at = locate(result.parsed, '/git/url');
    issues.push({
      file, ...at, path: '/git/url',
      message: 'must not contain credentials; store the token in the secret store and name it in git.tokenSecret',
    });
  }
  if (config.driver === 'docker' && !config.docker) config.docker = { network: 'atomo' };
  if (issues.length) return { config: null, issues };
  return { config: deepFreeze(config), issues: [] };
}

/** Read and validate fleet.yaml from disk; throws FleetError INVALID_CONFIG listing every issue. */
export async function loadFleetConfig(path: string, opts: { repoDir?: string } = {}): Promise<FleetConfig> {
  const file = opts.repoDir ? relative(opts.repoDir, path) : path;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new FleetError('INVALID_CONFIG', `cannot read ${file}: create it (see fleet.yaml in the repository root)`, {
      cause: err,
    });
  }
  const { config, issues } = checkFleetConfig(text, file);
  if (!config) {
    throw new FleetError('INVALID_CONFIG', `${file} is invalid:\n${issues.map(formatIssue).join('\n')}`);
  }
  return config;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
