// A real git repository in a temp folder, driven through the `git` binary, for tests that read commits.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';

export interface TestRepo {
  dir: string;
  /** Write a file (creating folders) relative to the repo root; not staged until `commit`. */
  write(path: string, text: string): void;
  /** Remove a file or folder relative to the repo root. */
  remove(path: string): void;
  /** Stage everything (`git add -A`) and commit; returns the new commit's full sha. */
  commit(message: string, opts?: { author?: string; allowEmpty?: boolean }): string;
  /** `git revert --no-edit <sha>`; returns the new commit's sha. */
  revert(sha: string): string;
  resetHard(sha: string): void;
  /** Full sha of HEAD. */
  head(): string;
  /** Run any git command in the repo; returns trimmed stdout. */
  git(...args: string[]): string;
  cleanup(): void;
}

function runGit(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync('git', args, {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    // Isolate from the machine's git config so tests behave the same everywhere.
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', ...env },
  }).trim();
}

/** A fresh repository on branch `main` with a local identity, no commits yet. */
export async function createRepo(): Promise<TestRepo> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-git-'));
  runGit(dir, ['init', '-q', '-b', 'main']);
  runGit(dir, ['config', 'user.name', 'Fleet Test']);
  runGit(dir, ['config', 'user.email', 'fleet-test@example.com']);
  runGit(dir, ['config', 'commit.gpgsign', 'false']);
  const git = (...args: string[]) => runGit(dir, args);
  return {
    dir,
    git,
    write(path, text) {
      const full = join(dir, path);
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, text);
    },
    remove(path) {
      rmSync(join(dir, path), { recursive: true, force: true });
    },
    commit(message, opts = {}) {
      runGit(dir, ['add', '-A']);
      const args = ['commit', '-q', '-m', message];
      if (opts.allowEmpty) args.push('--allow-empty');
      if (opts.author) args.push(`--author=${opts.author}`);
      runGit(dir, args);
      return git('rev-parse', 'HEAD');
    },
    revert(sha) {
      runGit(dir, ['revert', '--no-edit', sha]);
      return git('rev-parse', 'HEAD');
    },
    resetHard(sha) {
      runGit(dir, ['reset', '-q', '--hard', sha]);
    },
    head() {
      return git('rev-parse', 'HEAD');
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const DEFAULT_SCHEMA = 'export interface Widget { id: string; name: string; }\n';

/** A fleet.yaml valid for local runs (process driver, embedded Postgres, local secrets, plain HTTP). */
export const DEFAULT_FLEET_YAML = [
  'branch: main',
  'pollInterval: 30',
  'driver: process',
  'postgres:',
  '  admin: embedded',
  'secretStore:',
  '  type: local',
  'gateway:',
  '  admin: http://127.0.0.1:2019',
  '  listen: ":8080"',
  '  tls: off',
  '',
].join('\n');

export interface WriteProjectOptions {
  /** Keys merged over the default manifest (`undefined` values remove a key). */
  manifest?: Record<string, unknown>;
  /** Content of the schema file; default a one-model schema. */
  schema?: string;
  /** Raw project.yaml text, used instead of `manifest` (for invalid YAML tests). */
  rawManifest?: string;
}

/**
 * Write a valid `projects/<id>/project.yaml` and `schema.ts` (and a valid `fleet.yaml` when the repo has none).
 * Does not commit. Returns the manifest object written.
 */
export function writeProject(repo: Pick<TestRepo, 'dir' | 'write'>, id: string, opts: WriteProjectOptions = {}) {
  const manifest: Record<string, unknown> = {
    id,
    displayName: id.charAt(0).toUpperCase() + id.slice(1),
    hostname: `${id.replace(/_/g, '-')}.localhost`,
    state: 'running',
  };
  for (const [key, value] of Object.entries(opts.manifest ?? {})) {
    if (value === undefined) delete manifest[key];
    else manifest[key] = value;
  }
  repo.write(`projects/${id}/project.yaml`, opts.rawManifest ?? stringify(manifest));
  repo.write(`projects/${id}/schema.ts`, opts.schema ?? DEFAULT_SCHEMA);
  if (!existsSync(join(repo.dir, 'fleet.yaml'))) repo.write('fleet.yaml', DEFAULT_FLEET_YAML);
  return manifest;
}
