// Where the daemon reads the fleet repository from: the checkout it runs in (laptop), or a clone it keeps
// fetching over HTTPS (production). Both only answer "which commit is the tracked branch at now"; readers
// work on that commit's objects, never on a working tree.
import * as fs from 'node:fs';
import { rm } from 'node:fs/promises';
import { gitFs } from './git-fs.ts';
import { join } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import type { Logger } from 'pino';
import { FleetError, describe } from '../core/errors.ts';

export interface SyncResult {
  /** Commit SHA the tracked branch points at. */
  head: string;
  /** `Name <email>` of that commit's author. */
  author: string;
  /** True on this source's first sync, then whenever head differs from the previous successful sync. */
  changed: boolean;
}

export interface GitSource {
  /** Working directory of the repository (its objects live in `<dir>/.git`). */
  readonly dir: string;
  sync(): Promise<SyncResult>;
  /** The tracked branch as last fetched, read without the network (null before any fetch succeeded). */
  lastKnown(): Promise<SyncResult | null>;
  close(): Promise<void>;
}

export interface LocalSourceOptions {
  repoDir: string;
  branch: string;
}

export interface RemoteSourceOptions {
  /** HTTPS URL of the fleet repository, without credentials. */
  url: string;
  branch: string;
  /** Where the clone lives; reused across daemon restarts. */
  dir: string;
  /** Reads the access token from the secret store on each sync; undefined means anonymous. */
  token?: () => Promise<string | undefined>;
  log: Logger;
}

export type GitSourceKind = 'local' | 'remote';

const SOURCES = {
  local: (opts: LocalSourceOptions) => createLocalSource(opts),
  remote: (opts: RemoteSourceOptions) => createRemoteSource(opts),
} as const;

export function createGitSource(kind: 'local', opts: LocalSourceOptions): GitSource;
export function createGitSource(kind: 'remote', opts: RemoteSourceOptions): GitSource;
export function createGitSource(kind: string, opts: LocalSourceOptions | RemoteSourceOptions): GitSource;
export function createGitSource(kind: string, opts: LocalSourceOptions | RemoteSourceOptions): GitSource {
  if (!Object.hasOwn(SOURCES, kind)) {
    throw new FleetError(
      'UNKNOWN_COMPONENT',
      `unknown git source "${kind}": known sources are ${Object.keys(SOURCES).join(', ')}`,
    );
  }
  const make = SOURCES[kind as GitSourceKind] as (o: typeof opts) => GitSource;
  return make(opts);
}

/** The daemon runs inside the fleet repo: read the branch ref as it is, no fetch. */
export function createLocalSource(opts: LocalSourceOptions): GitSource {
  const ref = `refs/heads/${opts.branch}`;
  const tracker = headTracker();
  return {
    dir: opts.repoDir,
    lastKnown: () => readHead(opts.repoDir, ref),
    sync: tracker.serial(async () => {
      let head: string;
      try {
        head = await git.resolveRef({ fs: gitFs, dir: opts.repoDir, ref });
      } catch (err) {
        throw new FleetError(
          'GIT',
          `cannot read branch ${opts.branch} in ${opts.repoDir}: ${describe(err)}; ` +
            'check that the directory is a git repository and the branch exists',
          { cause: err },
        );
      }
      return tracker.result(head, await readAuthor(opts.repoDir, head));
    }),
    close: tracker.drain,
  };
}

/** Production: keep a no-checkout, single-branch clone and fetch the tracked branch on every sync. */
export function createRemoteSource(opts: RemoteSourceOptions): GitSource {
  const safeUrl = checkUrl(opts.url);
  const remoteRef = `refs/remotes/origin/${opts.branch}`;
  const tracker = headTracker();
  const log = opts.log.child({ component: 'git', url: safeUrl, branch: opts.branch });

  const sync = async (): Promise<SyncResult> => {
    const token = opts.token ? await opts.token() : undefined;
    // Credentials travel only through onAuth: never in the URL, .git/config, logs or errors.
    const onAuth = () => (token ? { username: 'x-access-token', password: token } : undefined);
    const started = Date.now();
    try {
      if (await hasClone(opts.dir)) await fetchBranch(opts, onAuth);
      else await cloneBranch(opts, onAuth);
    } catch (err) {
      if (err instanceof FleetError) throw err;
      const reason = redact(describe(err), token) + hint(err);
      // The daemon logs once per change of the source's state; a line per failed fetch would flood the log.
      log.debug({ reason }, 'git fetch failed; keeping the last fetched state');
      throw new FleetError('GIT', `cannot fetch ${safeUrl} branch ${opts.branch}: ${reason}`);
    }
    const head = await resolveFetched(opts.dir, remoteRef, safeUrl, opts.branch);
    // Keep the local branch on the remote head too, so readers may use either ref.
    await git.writeRef({ fs: gitFs, dir: opts.dir, ref: `refs/heads/${opts.branch}`, value: head, force: true });
    log.debug({ head, ms: Date.now() - started }, 'git fetched');
    return tracker.result(head, await readAuthor(opts.dir, head));
  };
  const lastKnown = async () => ((await hasClone(opts.dir)) ? readHead(opts.dir, remoteRef) : null);
  return { dir: opts.dir, sync: tracker.serial(sync), lastKnown, close: tracker.drain };
}

/** A ref and its commit's author, or null when the ref cannot be read. */
async function readHead(dir: string, ref: string): Promise<SyncResult | null> {
  try {
    const head = await git.resolveRef({ fs: gitFs, dir, ref });
    return { head, author: await readAuthor(dir, head), changed: false };
  } catch {
    return null;
  }
}

async function resolveFetched(dir: string, ref: string, url: string, branch: string): Promise<string> {
  try {
    return await git.resolveRef({ fs: gitFs, dir, ref });
  } catch (err) {
    throw new FleetError(
      'GIT',
      `branch ${branch} does not exist at ${url}: push a commit to it or set \`branch\` in fleet.yaml`,
      { cause: err },
    );
  }
}

/** What to do next, from isomorphic-git's error code (never its message). */
function hint(err: unknown): string {
  const e = err as { code?: string; data?: { statusCode?: number } };
  const status = e.code === 'HttpError' ? e.data?.statusCode : undefined;
  if (status === 401 || status === 403) return '; check that the token (git.tokenSecret) can read the repository';
  if (status === 404) return '; check git.url';
  if (e.code === 'NotFoundError') return '; check that the branch exists on the remote';
  return '';
}

type OnAuth = () => { username: string; password: string } | undefined;

/** A clone left by an earlier run (even one cut short) can be fetched into once it knows its remote. */
async function hasClone(dir: string): Promise<boolean> {
  if (!fs.existsSync(join(dir, '.git', 'HEAD'))) return false;
  try {
    return (await git.getConfig({ fs: gitFs, dir, path: 'remote.origin.url' })) !== undefined;
  } catch {
    return false;
  }
}

async function cloneBranch(opts: RemoteSourceOptions, onAuth: OnAuth): Promise<void> {
  // Never replace a repository we did not clone (a misconfigured dir could point at someone's work).
  if (fs.existsSync(join(opts.dir, '.git'))) {
    throw new FleetError(
      'GIT',
      `${opts.dir} holds a git repository without remote "origin": remove it or set another clone directory`,
    );
  }
  try {
    await git.clone({
      fs: gitFs, http, dir: opts.dir, url: opts.url, ref: opts.branch,
      singleBranch: true, noCheckout: true, noTags: true, onAuth,
    });
  } catch (err) {
    // A half-written clone would be taken for a usable one after a restart.
    await rm(join(opts.dir, '.git'), { recursive: true, force: true });
    throw err;
  }
}

async function fetchBranch(opts: RemoteSourceOptions, onAuth: OnAuth): Promise<void> {
  // The configured URL may have changed since the clone (never with credentials: checkUrl refused those).
  await git.setConfig({ fs: gitFs, dir: opts.dir, path: 'remote.origin.url', value: opts.url });
  // The default refspec is `+refs/heads/*:…` (forced), so a force-pushed branch moves the remote ref back too.
  await git.fetch({
    fs: gitFs, http, dir: opts.dir, remote: 'origin', ref: opts.branch,
    singleBranch: true, tags: false, onAuth,
  });
}

async function readAuthor(dir: string, oid: string): Promise<string> {
  const { commit } = await git.readCommit({ fs: gitFs, dir, oid });
  return `${commit.author.name} <${commit.author.email}>`;
}

/** The URL as it may appear in messages; a URL carrying credentials is refused, they belong in the secret store. */
function checkUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new FleetError('INVALID_CONFIG', `git url "${url}" is not a valid URL: use https://host/owner/repo.git`);
  }
  if (parsed.username || parsed.password) {
    parsed.username = '';
    parsed.password = '';
    throw new FleetError(
      'INVALID_CONFIG',
      `git url ${parsed.toString()} must not contain credentials: remove them and set git.tokenSecret instead`,
    );
  }
  return parsed.toString();
}

function redact(text: string, token: string | undefined): string {
  if (!token) return text;
  const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
  return text.split(token).join('***').split(basic).join('***');
}

/** Serializes syncs (the poller never overlaps, but callers may) and remembers the last head for `changed`. */
function headTracker() {
  let last: string | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  return {
    result(head: string, author: string): SyncResult {
      const changed = head !== last;
      last = head;
      return { head, author, changed };
    },
    serial<T>(fn: () => Promise<T>): () => Promise<T> {
      return () => {
        const run = chain.then(fn, fn);
        chain = run.catch(() => undefined);
        return run;
      };
    },
    drain: async (): Promise<void> => {
      await chain;
    },
  };
}
