// Operations figures of the daemon, on real components (issue 10, figures 7 and 9):
//  7. An idle daemon: `fleet daemon` as a real child process with 1,000 stopped projects (quick: 100) and with 10,
//     converged first, then its CPU (utime+stime from /proc) and RSS (VmRSS) sampled over 60 s (quick: 5 s).
//  9. Commit → serving through the webhook: a daemon with a real Caddy; from POSTing the signed push webhook until
//     Caddy answers 200 for a new alias, against the same raw steps done by hand (git show, registry rows, render,
//     POST /load, poll), interleaved.
// Numbers only: a figure over its target is printed with ok=false.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { createLogger } from '../../daemon/log.ts';
import { DAEMON_NODE_FLAGS } from '../../daemon/config/defaults.ts';
import { validateManifestText } from '../../daemon/manifest/validate.ts';
import { checkFleetConfig } from '../../daemon/manifest/fleet-config.ts';
import pg from 'pg';
import { renderCaddyConfig } from '../../daemon/gateway/render.ts';
import type { FleetConfig } from '../../daemon/core/types.ts';
import { DEFAULT_FLEET_YAML } from '../harness/git.ts';
import { adminRequest, startCaddy, type TestCaddy } from '../harness/caddy.ts';
import { freePort } from '../harness/ports.ts';
import { absNow, startPoller } from './poller.ts';
import { generateFleet, quick, ratioRow, report, reportValues, sample, type BenchFleet } from './lib.ts';
import type { Bench } from './run.ts';

const FLEET_JS = fileURLToPath(new URL('../../scripts/fleet.js', import.meta.url));
const WARM_JS = fileURLToPath(new URL('../../scripts/warm-cache.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run$ = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A progress line (stderr, so the tables on stdout stay clean). */
const step = (what: string) => console.error(`  ${new Date().toISOString().slice(11, 23)} ${what}`);

// ---------------------------------------------------------------------------------------------------------------
// Small HTTP helpers: a fresh connection per request (Caddy restarts its listeners on each load).

function get(port: number, path: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const headers = host ? { host } : {};
    const req = http.request({ host: '127.0.0.1', port, path, headers, setHost: !host, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, body: String(err) }));
    req.end();
  });
}

/** Poll until `check` holds; throws with the last value seen after `timeoutMs`. */
async function until<T>(what: string, fn: () => Promise<T>, check: (v: T) => boolean, timeoutMs: number, everyMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (check(last)) return last;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not there after ${timeoutMs} ms (last: ${JSON.stringify(last)?.slice(0, 300)})`);
}

interface Healthz { ok: boolean; last: { commit: string | null; ok: boolean; error?: string } }

async function healthz(port: number): Promise<Healthz | null> {
  const r = await get(port, '/healthz');
  if (r.status !== 200) return null;
  try {
    return JSON.parse(r.body) as Healthz;
  } catch {
    return null;
  }
}

const converged = (head: string) => (h: Healthz | null) => !!h && h.last.ok && h.last.commit === head;

// ---------------------------------------------------------------------------------------------------------------
// /proc: the daemon's process tree, its CPU ticks and resident memory.

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

interface Stat { ppid: number; comm: string; ticks: number }

/** utime+stime of the process plus cutime+cstime (children it reaped), in clock ticks. */
function readStat(pid: number): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    return { ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** `root` and all its descendants, from the ppid of every process in /proc. */
function processTree(root: number): Map<number, Stat> {
  const all = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) all.set(Number(name), s);
  }
  const tree = new Map<number, Stat>();
  const rootStat = all.get(root);
  if (!rootStat) return tree;
  tree.set(root, rootStat);
  let frontier = [root];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const [pid, s] of all) if (frontier.includes(s.ppid) && !tree.has(pid)) {
      tree.set(pid, s);
      next.push(pid);
    }
    frontier = next;
  }
  return tree;
}

// ---------------------------------------------------------------------------------------------------------------
// 7. The idle daemon

interface ChildDaemon {
  child: ChildProcess;
  port: number;
  lines: string[];
  stop(): Promise<void>;
}

/** `fleet daemon` (scripts/fleet.js through tsx) on the fleet's repo, state and Postgres, no gateway, LOG_LEVEL=warn. */
async function spawnFleetDaemon(f: BenchFleet): Promise<ChildDaemon> {
  const port = await freePort();
  // Started as the Dockerfile starts it: with the daemon's node flags.
  const args = [
    ...DAEMON_NODE_FLAGS, FLEET_JS, 'daemon', '--repo', f.repo.dir, '--state-dir', f.stateDir, '--registry', f.registryUrl,
    '--postgres', f.pg.url, '--http-port', String(port), '--no-gateway',
  ];
  // The pass interval stays the default (5 s), as in production.
  const child = spawn(process.execPath, args, {
    cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn', FLEET_PORT_BASE: String(f.portBase) }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.on('data', (chunk: Buffer) => {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (lines.length > 50) lines.splice(0, lines.length - 50);
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Should the bench itself exit early (run.ts exits on a signal), the daemon does not stay behind.
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  void exited.then(() => process.removeListener('exit', onExit));
  return {
    child, port, lines,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface IdleFigures {
  n: number;
  convergeMs: number;
  cpuPct: number;
  rssMaxMiB: number;
  rssMedianMiB: number;
  processes: string[];
}

/**
 * Figure 7. `cleanup` receives the fleets' teardown, still running when this returns: 1,000 project databases are
 * ~7 GB of files, so their removal runs in a child `rm -rf` while figure 9 sets up (figure 9 waits for it before
 * measuring).
 */
async function idle(cleanup: Promise<unknown>[]): Promise<void> {
  const big = quick() ? 100 : 1000;
  const windowMs = quick() ? 5_000 : 60_000;
  const sizes = [big, 10];
  const fleets: BenchFleet[] = [];
  const daemons: ChildDaemon[] = [];
  try {
    // Two fleets, each on its own embedded Postgres, each with its own daemon; converged side by side, then
    // sampled in the same window so both see the same machine.
    for (const n of sizes) fleets.push(await generateFleet({ n, running: 0 }));
    // As the production image does at build time: every module transformed before the daemons start, so no esbuild
    // service is started by them and stays in the measured tree (it would after any source change).
    execFileSync(process.execPath, [WARM_JS], { stdio: 'ignore' });
    step(`idle: fleets of ${sizes.join(' and ')} generated, tsx cache warm; starting their daemons`);
    const started = Date.now();
    for (const f of fleets) daemons.push(await spawnFleetDaemon(f));
    const convergeMs = await Promise.all(daemons.map(async (d, i) => {
      const head = fleets[i].repo.head();
      await until(`daemon of ${sizes[i]} projects converged`, async () => {
        if (d.child.exitCode !== null) throw new Error(`fleet daemon exited with ${d.child.exitCode}:\n${d.lines.slice(-10).join('\n')}`);
        return healthz(d.port);
      }, converged(head), 300_000, 250).catch((err: unknown) => {
        throw new Error(`${String(err)}\n${d.lines.slice(-10).join('\n')}`);
      });
      return Date.now() - started;
    }));
    // Let the last pass's garbage settle a moment: the window is about idling, not about the convergence.
    step(`idle: converged in ${convergeMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(' and ')}; sampling for ${windowMs / 1000} s`);
    await sleep(1000);
    const pids = daemons.map((d) => d.child.pid!);
    const before = pids.map((p) => processTree(p));
    const rss: number[][] = pids.map(() => []);
    const t0 = performance.now();
    const every = quick() ? 500 : 1000;
    while (performance.now() - t0 < windowMs) {
      await sleep(every);
      pids.forEach((p, i) => rss[i].push([...processTree(p).keys()].reduce((kb, pid) => kb + rssKb(pid), 0)));
    }
    const after = pids.map((p) => processTree(p));
    const seconds = (performance.now() - t0) / 1000;
    const figures: IdleFigures[] = sizes.map((n, i) => {
      let ticks = 0;
      // A process gone by the end was reaped into its parent's cutime/cstime, counted there.
      for (const [pid, s] of after[i]) ticks += s.ticks - (before[i].get(pid)?.ticks ?? 0);
      const r = sample(rss[i]);
      const tree = new Map([...before[i], ...after[i]]);
      return {
        n, convergeMs: convergeMs[i], cpuPct: (ticks / CLK_TCK / seconds) * 100,
        rssMaxMiB: Math.max(...rss[i]) / 1024, rssMedianMiB: r.median / 1024,
        processes: [...tree].map(([pid, s]) => `${pid} ${s.comm}`),
      };
    });
    const [b, small] = figures;
    const cpuTarget = 1;
    const rssTarget = 120;
    const fmt2 = (x: number) => Number(x.toFixed(2));
    reportValues('ops-idle', `idle daemon (child process, default 5 s pass interval, LOG_LEVEL=warn) over ${(windowMs / 1000).toFixed(0)} s after converging: `
      + `CPU (utime+stime, CLK_TCK ${CLK_TCK}) and VmRSS summed over the daemon's process tree`, [
      { name: `CPU, ${big.toLocaleString('en')} stopped projects`, value: fmt2(b.cpuPct), unit: '% of one core', target: `≤ ${cpuTarget}`, ok: b.cpuPct <= cpuTarget },
      { name: `RSS max over the window, ${big.toLocaleString('en')} projects`, value: fmt2(b.rssMaxMiB), unit: 'MiB', target: `≤ ${rssTarget}`, ok: b.rssMaxMiB <= rssTarget },
      { name: `RSS median, ${big.toLocaleString('en')} projects`, value: fmt2(b.rssMedianMiB), unit: 'MiB' },
      { name: 'CPU, 10 stopped projects (reference)', value: fmt2(small.cpuPct), unit: '% of one core' },
      { name: 'RSS max over the window, 10 projects (reference)', value: fmt2(small.rssMaxMiB), unit: 'MiB' },
      { name: `start → first converged pass, ${big.toLocaleString('en')} projects`, value: fmt2(b.convergeMs / 1000), unit: 's' },
      { name: 'start → first converged pass, 10 projects', value: fmt2(small.convergeMs / 1000), unit: 's' },
      { name: 'processes in the measured tree', value: `${b.processes.join(', ')} | ${small.processes.join(', ')}` },
    ]);
    console.log('  (the tree is `node scripts/fleet.js daemon` and its descendants; tsx runs in that process, no stopped project has an '
      + 'instance; the Postgres backends serving the daemon\'s queries are not in the tree and not counted)');
  } finally {
    step('idle: stopping');
    for (const d of daemons) await d.stop().catch(() => {});
    for (const f of fleets) cleanup.push(teardown(f));
  }
}

/**
 * Stop the fleet's Postgres and remove its data folder in a child process (rmSync would hold the event loop for
 * tens of seconds), then destroy the fleet (its Postgres is stopped already, so that part is quick).
 */
async function teardown(f: BenchFleet): Promise<void> {
  const t0 = performance.now();
  try {
    await f.pg.stop();
    const t1 = performance.now();
    // One database folder per project under base/: removed 4 rm processes at a time (~40% faster than one).
    await run$('sh', ['-c', 'find "$1/base" -mindepth 1 -maxdepth 1 -print0 | xargs -0 -r -P 4 -n 16 rm -rf -- && rm -rf -- "$1"', 'sh', f.pg.dataDir]);
    step(`cleanup of the fleet of ${f.ids.length}: Postgres stopped in ${((t1 - t0) / 1000).toFixed(1)} s, its files removed in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  } catch (err) {
    console.error(`ops cleanup: ${String(err)}`);
  }
  await f.destroy().catch((err: unknown) => console.error(`ops cleanup: ${String(err)}`));
}

// ---------------------------------------------------------------------------------------------------------------
// 9. Commit → serving through the webhook

interface LogLine { time: number; msg: string }

/** Figure 9. `pending`: teardown of figure 7 still running, awaited before anything is timed. */
async function webhook(pending: Promise<unknown>[]): Promise<void> {
  const n = quick() ? 10 : 100;
  // Many repeats, interleaved: one run of a few tens of milliseconds each on a shared 2-core machine decides only
  // when its medians are steady.
  const repeats = quick() ? 6 : 60;
  const secret = randomBytes(16).toString('hex');
  let caddy: TestCaddy | null = null;
  let f: BenchFleet | null = null;
  let forget = () => {};
  try {
    step('webhook: starting Caddy');
    caddy = await startCaddy();
    const killCaddy = caddy.kill;
    process.once('exit', killCaddy);
    forget = () => process.removeListener('exit', killCaddy);
    step(`webhook: generating a fleet of ${n}`);
    f = await generateFleet({ n, running: 1 });
    const fleet = f;
    const cad = caddy;
    const override: Partial<FleetConfig['gateway']> = { listen: `127.0.0.1:${cad.httpPort}`, admin: cad.adminListen };
    const gw: FleetConfig['gateway'] = { ...checkFleetConfig(DEFAULT_FLEET_YAML).config!.gateway, ...override };
    // Info level, the daemon's default: its lines give the phases of each webhook pass.
    const lines: LogLine[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) {
          if (!l) continue;
          try {
            const rec = JSON.parse(l) as { time?: number; msg?: string };
            lines.push({ time: rec.time ?? Date.now(), msg: rec.msg ?? '' });
            // The daemon's errors are shown: a figure that times out says why.
            if ((rec as { level?: number }).level! >= 50) console.error(`  daemon error: ${l.slice(0, 600)}`);
          } catch {
            // not JSON
          }
        }
        if (lines.length > 2000) lines.splice(0, lines.length - 2000);
        cb();
      },
    });
    const running = await fleet.boot({
      log: createLogger({ level: 'info', destination: sink }),
      manual: false, intervalMs: 3_600_000, caddyAdmin: cad.adminUrl, gatewayOverride: override, webhookSecret: secret,
    });
    step('webhook: daemon booted');
    const daemonPort = Number(new URL(running.httpUrl).port);
    const id = fleet.ids[0];
    const startedAt = Date.now();
    await until(`fleet of ${n} converged`, () => healthz(daemonPort), converged(fleet.repo.head()), 120_000, 100);
    await until(`${id} served through Caddy`, () => get(cad.httpPort, '/', `${id}.bench.test`), (r) => r.status === 200, 30_000, 20);
    const convergeMs = Date.now() - startedAt;
    step(`webhook: converged and serving ${id} in ${convergeMs} ms`);
    await Promise.all(pending);
    step('webhook: the previous figure\'s fleets are gone; measuring');

    const manifestPath = `projects/${id}/project.yaml`;
    let k = 0;
    /**
     * Commit a new alias on the running project in place of its last one (untimed; a manifest holds at most 100
     * aliases); returns the new host and the commit.
     */
    const commitAlias = () => {
      k += 1;
      const host = `new${k}.bench.test`;
      const m = parse(readFileSync(`${fleet.repo.dir}/${manifestPath}`, 'utf8')) as Record<string, unknown>;
      fleet.repo.write(manifestPath, stringify({ ...m, aliases: [host] }));
      return { host, commit: fleet.repo.commit(`${id}: alias ${host}`) };
    };
    /**
     * Bring the daemon to rest before a repeat: one pass with no new commit, as its loop (5 s by default) runs
     * between two merges. Without it each commit pass would find every row rewritten by the previous commit pass
     * (observedCommit) and look at, and rewrite, all of them again.
     */
    const settle = async () => {
      const before = running.daemon.last;
      running.daemon.kick();
      await until('a pass at rest', async () => running.daemon.last, (l) => l !== before && l.ok, 30_000, 2);
    };
    // Seen from a worker thread, as a client outside the daemon's process sees it (poller.ts).
    const poller = startPoller();
    const serving = (host: string) => poller.served(cad.httpPort, host, 1, 30_000);

    interface Phases { branchMoved: number; gatewayLoaded: number; serving: number; passDone: number }
    const phases: Phases[] = [];
    const viaWebhook = async (): Promise<number> => {
      await settle();
      const { host, commit } = commitAlias();
      if ((await get(cad.httpPort, '/', host)).status === 200) throw new Error(`${host} served before the change`);
      const body = JSON.stringify({ ref: 'refs/heads/main', after: commit });
      const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
      const from = lines.length;
      const wall = Date.now();
      // Polled from before the POST; timed from the moment the worker begins to send it.
      const served = serving(host);
      const { at: t0, status } = await poller.post(`${running.httpUrl}/hooks/git`, body, {
        'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': signature,
      });
      if (status !== 202) throw new Error(`webhook answered ${status}`);
      const ms = (await served) - t0;
      await until('webhook pass done', () => healthz(daemonPort), converged(commit), 30_000, 5);
      const passDone = Date.now() - wall;
      const at = (msg: string) => lines.slice(from).find((l) => l.msg === msg)?.time;
      phases.push({
        branchMoved: (at('tracked branch moved') ?? NaN) - wall, gatewayLoaded: (at('gateway config loaded') ?? NaN) - wall,
        serving: ms, passDone,
      });
      return ms;
    };
    const byHand = async (): Promise<number> => {
      await settle();
      const { host, commit } = commitAlias();
      if ((await get(cad.httpPort, '/', host)).status === 200) throw new Error(`${host} served before the change`);
      const t0 = absNow();
      // Polled from the start, as the webhook side is, by the same poller.
      const served = serving(host);
      const { stdout } = await run$('git', ['show', `${commit}:${manifestPath}`], { cwd: fleet.repo.dir });
      const tShow = absNow();
      // Read and checked against the project schema, as any deploy must before it routes.
      const checked = validateManifestText(manifestPath, stdout);
      if (!checked.value) throw new Error(`by hand: ${manifestPath} is invalid: ${checked.issues.map((i) => i.message).join('; ')}`);
      const manifest = checked.value as { aliases?: string[] };
      const rows = (await running.daemon.registry.list()).map((r) => (r.id === id && r.manifest
        ? { ...r, aliases: manifest.aliases ?? [], manifest: { ...r.manifest, aliases: manifest.aliases ?? [] } }
        : r));
      // The record the daemon keeps before it routes: the project's row and an event, in one statement (one round
      // trip, atomic), as the daemon writes them.
      await record.query(`WITH written AS (UPDATE projects SET aliases = $2, updated_at = now() WHERE id = $1 RETURNING id)
        INSERT INTO project_events (project_id, action, actor, commit, detail) SELECT id, 'update', 'bench by hand', $3, '{}' FROM written`, [id, manifest.aliases ?? [], commit]);
      const tRows = absNow();
      const config = renderCaddyConfig(rows, gw);
      const tRender = absNow();
      const res = await adminRequest(cad.adminUrl, 'POST', '/load', JSON.stringify(config));
      if (res.status !== 200) throw new Error(`Caddy /load answered ${res.status}: ${res.text.slice(0, 300)}`);
      const tLoad = absNow();
      const tEnd = await served;
      steps.push({ show: tShow - t0, rows: tRows - tShow, render: tRender - tRows, load: tLoad - tRender, poll: tEnd - tLoad });
      return tEnd - t0;
    };
    const steps: { show: number; rows: number; render: number; load: number; poll: number }[] = [];
    const record = new pg.Client(fleet.registryUrl);
    record.on('error', () => {}); // the fleet's Postgres stops at cleanup, also after a failed measurement
    await record.connect();

    // Warm-up, then measured: the daemon's code path is long and its first runs are slower (JIT), unlike the few
    // calls by hand. Ten of each reach the steady state on this machine.
    for (let i = 0; i < (quick() ? 1 : 10); i++) {
      await viaWebhook();
      await byHand();
    }
    phases.length = 0;
    steps.length = 0;
    const measured: number[] = [];
    const reference: number[] = [];
    // Interleaved, in turns of either order (ABBA), so neither side always follows the other.
    for (let i = 0; i < repeats; i++) {
      if (i % 2 === 0) {
        measured.push(await viaWebhook());
        reference.push(await byHand());
      } else {
        reference.push(await byHand());
        measured.push(await viaWebhook());
      }
    }
    // The floor of any pass at this size: one with nothing to change, run directly (the loop is idle: 1 h interval).
    const idlePass: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await running.daemon.pass();
      if (r.ok) idlePass.push(performance.now() - t0);
    }
    const med = (xs: number[]) => sample(xs.filter(Number.isFinite)).median.toFixed(1);
    const note = `webhook pass, median ms after the POST: branch moved (log) ${med(phases.map((p) => p.branchMoved))}, `
      + `gateway config loaded (log) ${med(phases.map((p) => p.gatewayLoaded))}, serving ${med(phases.map((p) => p.serving))}, `
      + `pass done (polled) ${med(phases.map((p) => p.passDone))}; a pass with nothing to change: ${med(idlePass)} ms. `
      + `By hand, median ms: git show ${med(steps.map((x) => x.show))}, registry rows read and the row + event written ${med(steps.map((x) => x.rows))}, `
      + `render ${med(steps.map((x) => x.render))}, POST /load ${med(steps.map((x) => x.load))}, poll to 200 ${med(steps.map((x) => x.poll))}. `
      + `Before each repeat the daemon ran one pass with no new commit (at rest). (First convergence ${convergeMs} ms, beside the previous figure's cleanup.)`;
    report({
      figure: 'ops-webhook',
      title: `commit → serving: alias added to the running project, webhook POST until Caddy answers 200 for it (POST and polls, every 1 ms on a new connection, from a worker thread: clients outside the daemon's event loop), `
        + `vs by hand: git show + schema check + registry rows + the row and event written (one statement) + renderCaddyConfig + POST /load, polled the same way from the start`,
      rows: [ratioRow(`${n} projects, 1 running`, 'webhook → daemon → Caddy', measured, 'by hand', reference, '≤ 1.15', note)],
    });
    await record.end();
    await poller.close();
  } finally {
    await f?.destroy().catch((err: unknown) => console.error(`ops cleanup: ${String(err)}`));
    await caddy?.stop().catch(() => {});
    forget();
  }
}

export const opsBench: Bench = {
  name: 'ops',
  description: 'idle daemon CPU and RSS (1,000 stopped projects vs 10), and commit → serving through the webhook vs by hand',
  async run() {
    // Stopping an embedded Postgres awaits the exit of a child whose handle is unref'd (daemon/postgres/embedded.ts
    // release): with nothing else pending node would leave mid-cleanup. A timer holds the loop until the end.
    const keep = setInterval(() => {}, 60_000);
    const cleanup: Promise<unknown>[] = [];
    try {
      await idle(cleanup);
      await webhook(cleanup);
    } finally {
      await Promise.all(cleanup);
      clearInterval(keep);
    }
  },
};
