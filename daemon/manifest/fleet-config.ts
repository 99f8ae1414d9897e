// fleet.yaml: fleet-wide settings, validated and given their defaults, returned as a frozen FleetConfig.
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { DEFAULT_DOCKER_NETWORK } from '../config/defaults.ts';
import { FleetError } from '../core/errors.ts';
import { DEFAULT_DATABASE_SERVER } from '../core/servers.ts';
import { SHARED_SECRETS_ID, cleanPrefix, refProblem } from '../secrets/refs.ts';
import { notifyProblems, notifyRefs } from '../notify/config.ts';
import type { FleetConfig, ValidationIssue } from '../core/types.ts';
import { capIssues, decodeText, formatIssue, locate, type ParsedYaml } from './parse.ts';
import { LIMITS } from './project.ts';
import { cronSchedulable } from './rules.ts';
import { validateYaml } from './validate.ts';

export interface FleetConfigResult {
  config: FleetConfig | null;
  issues: ValidationIssue[];
}

/**
 * Validate fleet.yaml content (text, or bytes as read from git or disk). `file` is the name used in messages
 * (relative to the repo root). Never throws: anything wrong is an issue naming the file.
 */
export function checkFleetConfig(
  content: string | Uint8Array, file = 'fleet.yaml', opts: { /** Raise (tests) the 64 KiB cap. */ maxBytes?: number } = {},
): FleetConfigResult {
  try {
    const decoded = decodeText(file, content, { ...LIMITS.fleet, maxBytes: opts.maxBytes ?? LIMITS.fleet.maxBytes });
    if ('issue' in decoded) return { config: null, issues: [decoded.issue] };
    const result = validateYaml<FleetConfig>('fleet.schema.json', file, decoded.text);
    if (!result.value) return { config: null, issues: capIssues(result.issues) };
    const config = result.value;
    const issues = fleetRules(file, config, result.parsed);
    if (config.driver === 'docker' && !config.docker) config.docker = { network: DEFAULT_DOCKER_NETWORK };
    // The schema's swarm.network default, for a fleet.yaml that says `driver: swarm` and nothing more.
    if (config.driver === 'swarm' && !config.swarm) config.swarm = { network: 'fleet-swarm' };
    if (issues.length) return { config: null, issues: capIssues(issues) };
    return { config: deepFreeze(config), issues: [] };
  } catch (err) {
    const message = String((err as Error)?.message ?? err).split('\n')[0];
    return { config: null, issues: [{ file, path: '', message: `could not be read: ${message}; fix the file and run fleet validate again` }] };
  }
}

/** What the schema cannot say: credentials in the clone URL, a branch git refuses, what may be shared. */
function fleetRules(file: string, config: FleetConfig, parsed: ParsedYaml): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const add = (path: string, message: string) => issues.push({ file, ...locate(parsed, path), path, message });
  // A token in the clone URL would end up in logs and the registry: it belongs in git.tokenSecret.
  if (config.git?.url && /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(config.git.url)) {
    add('/git/url', 'must not contain credentials; store the token in the secret store and name it in git.tokenSecret');
  }
  for (const p of serverProblems(config, parsed)) add(p.path, p.message);
  const registryBackup = config.backups?.registry;
  if (registryBackup && !cronSchedulable(registryBackup.schedule)) {
    add('/backups/registry/schedule', 'is not a cron schedule the daemon can run; use 5 or 6 fields such as "0 2 * * *" (minute hour day month weekday)');
  }
  const branch = branchProblem(config.branch);
  if (branch) add('/branch', `"${config.branch}" is a branch name git refuses: ${branch}; choose another name`);
  const prefix = cleanPrefix(config.secretStore.prefix);
  const serverRefs = Object.values(config.postgres.servers ?? {}).map((x) => (typeof x === 'string' ? x : x.admin));
  const own = [config.postgres.admin, ...serverRefs, config.git?.tokenSecret, config.git?.webhookSecret, ...notifyRefs(config.notify)]
    .filter((ref): ref is string => !!ref && ref.startsWith('/'));
  for (const p of notifyProblems(config.notify, prefix)) add(p.path, p.message);
  (config.sharedSecrets ?? []).forEach((entry, i) => {
    const problem = sharedEntryProblem(entry, prefix, own);
    if (problem) add(`/sharedSecrets/${i}`, problem);
  });
  return issues;
}

/**
 * `postgres.servers` beside `postgres.admin` (core/servers.ts): `servers.main` is the default server, so it may only
 * repeat postgres.admin (or give it, when postgres.admin is not written); only the default server can be embedded.
 * Normalizes `postgres.admin`/`instanceHost` to the default server's, which the rest of the daemon reads.
 */
function serverProblems(config: FleetConfig, parsed: ParsedYaml): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const servers = config.postgres.servers ?? {};
  for (const [name, s] of Object.entries(servers)) {
    const admin = typeof s === 'string' ? s : s.admin;
    if (name === DEFAULT_DATABASE_SERVER) {
      const explicit = parsed.doc.hasIn(['postgres', 'admin']);
      if (explicit && admin !== config.postgres.admin) {
        out.push({ path: `/postgres/servers/${name}`, message: `says another admin than postgres.admin: ${name} is the default server (postgres.admin); keep one of the two` });
        continue;
      }
      config.postgres.admin = admin;
      if (typeof s !== 'string' && s.instanceHost) config.postgres.instanceHost = s.instanceHost;
    } else if (admin === 'embedded') {
      out.push({ path: `/postgres/servers/${name}`, message: `only the default server (${DEFAULT_DATABASE_SERVER}) can be the embedded Postgres; name a secret reference to this server's admin URL` });
    }
  }
  return out;
}

/** Why a sharedSecrets entry may not be shared, or null. */
function sharedEntryProblem(entry: string, prefix: string, fleetRefs: string[]): string | null {
  const folder = entry.endsWith('/');
  const problem = refProblem(folder ? entry.slice(0, -1) : entry);
  if (problem) return problem;
  if (folder && `${prefix}/`.startsWith(entry)) {
    return `would share every project's secrets; share a narrower path such as ${prefix}/shared/`;
  }
  const covers = (ref: string) => (folder ? `${ref}/`.startsWith(entry) : ref === entry);
  const fleetPath = `${prefix}/fleet/`;
  if (entry.startsWith(fleetPath) || covers(fleetPath.slice(0, -1)) || fleetRefs.some(covers)) {
    return `would share the fleet's own secrets (admin URL, git token); share a narrower path such as ${prefix}/shared/`;
  }
  const sharedPath = `${prefix}/${SHARED_SECRETS_ID}/`;
  if (entry.startsWith(`${prefix}/`) && !entry.startsWith(sharedPath)) {
    return `is another project's path (${prefix}/<id>/ belongs to that project); put shared values under ${sharedPath}`;
  }
  return null;
}

/**
 * Why git would refuse `name` as a branch (the rules of `git check-ref-format --branch`), or null when it is fine.
 */
export function branchProblem(name: string): string | null {
  if (name === '@') return 'it is "@"';
  if (name.startsWith('-')) return 'it starts with "-"';
  if (name.endsWith('/')) return 'it ends with "/"';
  if (name.endsWith('.')) return 'it ends with "."';
  if (name.includes('..')) return 'it contains ".."';
  if (name.includes('@{')) return 'it contains "@{"';
  if (name.includes('//')) return 'it contains "//"';
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return 'it contains a space, a control character or one of ~ ^ : ? * [ \\';
  for (const part of name.split('/')) {
    if (part.startsWith('.')) return 'a part of it starts with "."';
    if (part.endsWith('.lock')) return 'a part of it ends with ".lock"';
  }
  return null;
}

/** Read and validate fleet.yaml from disk; throws FleetError INVALID_CONFIG listing every issue. */
export async function loadFleetConfig(path: string, opts: { repoDir?: string } = {}): Promise<FleetConfig> {
  const file = opts.repoDir ? relative(opts.repoDir, path) : path;
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (err) {
    throw new FleetError('INVALID_CONFIG', `cannot read ${file}: create it (see fleet.yaml in the repository root)`, {
      cause: err,
    });
  }
  const { config, issues } = checkFleetConfig(content, file);
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
