// Gateway latency with 1 and with 1,000 projects rendered by renderCaddyConfig, through the real Caddy.
// One upstream node server stands in for every instance; requests are sequential over one kept-alive socket.
import http from 'node:http';
import pino from 'pino';
import { createCaddyGateway } from '../../daemon/gateway/caddy.ts';
import { renderCaddyConfig } from '../../daemon/gateway/render.ts';
import type { FleetConfig, RegistryRow } from '../../daemon/core/types.ts';
import { startCaddy, type TestCaddy } from '../harness/caddy.ts';
import { quick, report, reportValues, sample, type Row } from './lib.ts';
import type { Bench } from './run.ts';

const REQUESTS = 2000;
const WARMUP = 200;
const BLOCK = 50;
/** Stop a row early rather than run long on a slow machine. */
const SERIES_BUDGET_MS = 8_000;

function rows(n: number, upstream: string): RegistryRow[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `p${i}`, displayName: `p${i}`, hostname: `p${i}.bench.test`, aliases: [`www.p${i}.bench.test`],
    status: 'running', desiredState: 'running', upstream, schemaVersion: null, schemaDigest: null, observedCommit: null,
    appliedCommit: null, lastHealth: { ok: true, at: '' }, conditions: [], secretRefs: {}, port: null, updatedAt: '',
    manifest: {
      id: `p${i}`, displayName: `p${i}`, hostname: `p${i}.bench.test`, aliases: [], state: 'running', schema: 'schema.ts',
      runtime: {}, env: {}, secrets: {}, resources: {},
    },
  }));
}

interface Series { min: number; p50: number; p99: number; count: number; status: number }
interface Target { port: number; headers: Record<string, string> }

/**
 * Sequential requests to several targets, interleaved in small blocks, so that noise from the rest of the
 * machine (other test runs) lands on every target alike and the comparison stays fair.
 */
async function measure(targets: Target[]): Promise<Series[]> {
  const agents = targets.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const one = (i: number) =>
    new Promise<number>((resolve, reject) => {
      const { port, headers } = targets[i];
      const req = http.request({ host: '127.0.0.1', port, path: '/', headers, agent: agents[i] }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  const status = targets.map(() => 0);
  const times: number[][] = targets.map(() => []);
  for (let i = 0; i < targets.length; i++) for (let w = 0; w < WARMUP; w++) status[i] = await one(i);
  const deadline = Date.now() + SERIES_BUDGET_MS;
  while (times[0].length < REQUESTS && Date.now() < deadline) {
    for (let i = 0; i < targets.length; i++) {
      for (let b = 0; b < BLOCK; b++) {
        const t0 = process.hrtime.bigint();
        await one(i);
        times[i].push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }
  }
  agents.forEach((a) => a.destroy());
  return times.map((t, i) => {
    t.sort((a, b) => a - b);
    const at = (q: number) => t[Math.min(t.length - 1, Math.floor(q * t.length))];
    return { min: t[0], p50: at(0.5), p99: at(0.99), count: t.length, status: status[i] };
  });
}

const us = (n: number) => `${n.toFixed(0).padStart(6)} µs`;

async function run(): Promise<void> {
  const upstreamServer = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((done) => upstreamServer.listen(0, '127.0.0.1', done));
  const upstreamPort = (upstreamServer.address() as { port: number }).port;
  // Two Caddies side by side, one with 1 project and one with 1,000, measured in alternation.
  const small = await startCaddy();
  const large = await startCaddy().catch(async (err: unknown) => {
    await small.stop();
    throw err;
  });
  try {
    for (const [caddy, n] of [[small, 1], [large, 1000]] as const) {
      const gw: FleetConfig['gateway'] = { admin: caddy.adminListen, listen: `127.0.0.1:${caddy.httpPort}`, tls: 'off', policies: {} };
      const config = renderCaddyConfig(rows(n, `127.0.0.1:${upstreamPort}`), gw);
      const t0 = Date.now();
      await createCaddyGateway({ adminUrl: caddy.adminUrl, log: pino({ level: 'silent' }) }).apply(config);
      console.log(`loaded ${n} project(s): ${(JSON.stringify(config).length / 1024).toFixed(0)} KB config in ${Date.now() - t0} ms`);
    }
    const n = 1000;
    const cases: [string, Record<string, string>, Record<string, string>][] = [
      ['first host', { host: 'p0.bench.test' }, { host: 'p0.bench.test' }],
      ['middle host', { host: 'p0.bench.test' }, { host: `p${n / 2}.bench.test` }],
      ['last host', { host: 'p0.bench.test' }, { host: `p${n - 1}.bench.test` }],
      ['last alias', { host: 'www.p0.bench.test' }, { host: `www.p${n - 1}.bench.test` }],
      ['last, upper case', { host: 'P0.Bench.Test' }, { host: `P${n - 1}.Bench.Test` }],
      ['header, unknown host', { host: '127.0.0.1', 'X-Atomo-Project': 'p0' }, { host: '127.0.0.1', 'X-Atomo-Project': `p${n - 1}` }],
      ['unknown host (404)', { host: 'nobody.bench.test' }, { host: 'nobody.bench.test' }],
    ];
    console.log(`\n${'request'.padEnd(22)} ${'direct p50/p99'.padStart(20)} ${'1 project p50/p99'.padStart(22)} ${'1,000 projects p50/p99'.padStart(24)}  ratio p50  status`);
    for (const [name, one, many] of cases) {
      const [direct, a, b] = await measure([
        { port: upstreamPort, headers: {} },
        { port: small.httpPort, headers: one },
        { port: large.httpPort, headers: many },
      ]);
      console.log(
        `${name.padEnd(22)} ${us(direct.p50)} / ${us(direct.p99)}  ${us(a.p50)} / ${us(a.p99)}  ${us(b.p50)} / ${us(b.p99)}   ${(b.p50 / a.p50).toFixed(2).padStart(5)}    ${a.status}/${b.status}`,
      );
    }
    console.log(`(${REQUESTS} requests per column and row, blocks of ${BLOCK} in turn, after ${WARMUP} warm-up requests each)`);
    await caseTable(small, large, n);
    await routeChange(small, large, upstreamPort);
  } finally {
    await small.stop();
    await large.stop();
    await new Promise((done) => upstreamServer.close(done));
  }
}

/** Target of every case row: p50 through 1,000 projects at most 15% over p50 through 1 project. */
const CASE_TARGET = 1.15;

/**
 * Host case: the same middle host spelled exact, UPPER and Mixed, through 1,000 projects vs through 1 (the same
 * spelling of that Caddy's only host). All six series are measured together, interleaved in blocks.
 */
async function caseTable(small: TestCaddy, large: TestCaddy, n: number): Promise<void> {
  const mid = n / 2;
  const spellings: [string, (s: string) => string][] = [
    ['exact case', (h) => h],
    ['UPPER CASE', (h) => h.toUpperCase()],
    ['Mixed Case', (h) => h.split('.').map((part, i) => (i % 2 === 0 ? part.toUpperCase() : part[0].toUpperCase() + part.slice(1))).join('.')],
  ];
  const targets = spellings.flatMap(([, spell]) => [
    { port: small.httpPort, headers: { host: spell('p0.bench.test') } },
    { port: large.httpPort, headers: { host: spell(`p${mid}.bench.test`) } },
  ]);
  const series = await measure(targets);
  // The tables are in ms (as every bench table); the notes spell the µs.
  const toSample = (s: Series) => ({ min: s.min / 1000, median: s.p50 / 1000, repeats: s.count });
  const rows: Row[] = spellings.map(([name], i) => {
    const a = series[2 * i];
    const b = series[2 * i + 1];
    const ratio = b.p50 / a.p50;
    const bad = [a, b].filter((s) => s.status !== 200).map((s) => s.status);
    return {
      fleet: `${n.toLocaleString('en')} projects`,
      measured: `${name} ${targets[2 * i + 1].headers.host}`,
      m: toSample(b),
      reference: `1 project, ${targets[2 * i].headers.host}`,
      r: toSample(a),
      ratio,
      target: `≤ ${CASE_TARGET}`,
      ok: ratio <= CASE_TARGET && bad.length === 0,
      note: `${name}: p50 ${b.p50.toFixed(0)} µs vs ${a.p50.toFixed(0)} µs, p99 ${b.p99.toFixed(0)} µs vs ${a.p99.toFixed(0)} µs`
        + (bad.length ? `; status ${a.status}/${b.status}, not 200` : ''),
    };
  });
  report({ figure: 'gateway-case', title: `host matching by case: one request through ${n.toLocaleString('en')} projects (2 hosts each) vs through 1, fastest / p50 of up to ${REQUESTS} requests`, rows });
}

/**
 * Control-plane cost of one route change: render the whole config from the rows (one hostname changed since the
 * last load) and load it through the daemon's Caddy client (GET /config/, compare, POST /load), at 1,000
 * projects vs 1. The changed hostname alternates between two spellings, so every load is a real change.
 */
async function routeChange(small: TestCaddy, large: TestCaddy, upstreamPort: number): Promise<void> {
  const repeats = quick() ? 5 : 15;
  const log = pino({ level: 'silent' });
  const setups = ([[small, 1], [large, 1000]] as const).map(([caddy, n]) => {
    const gw: FleetConfig['gateway'] = { admin: caddy.adminListen, listen: `127.0.0.1:${caddy.httpPort}`, tls: 'off', policies: {} };
    const base = rows(n, `127.0.0.1:${upstreamPort}`);
    const k = Math.floor(n / 2);
    const variant = (flip: boolean): RegistryRow[] => {
      if (!flip) return base;
      const host = `p${k}-moved.bench.test`;
      const copy = base.slice();
      copy[k] = { ...base[k], hostname: host, manifest: { ...base[k].manifest!, hostname: host } };
      return copy;
    };
    return { n, gw, variant, gateway: createCaddyGateway({ adminUrl: caddy.adminUrl, log }), render: [] as number[], load: [] as number[], total: [] as number[], get: [] as number[] };
  });
  // Each Caddy runs the unflipped config now (loaded above); repeats alternate flipped / unflipped, 1 and 1,000 in turn.
  for (let i = 0; i < repeats + 1; i++) {
    for (const s of setups) {
      const t0 = performance.now();
      const config = renderCaddyConfig(s.variant(i % 2 === 0), s.gw);
      const t1 = performance.now();
      const { changed } = await s.gateway.apply(config);
      const t2 = performance.now();
      if (!changed) throw new Error(`route change at ${s.n} project(s): Caddy already ran the changed config`);
      if (i === 0) continue; // warm-up
      s.render.push(t1 - t0);
      s.load.push(t2 - t1);
      s.total.push(t2 - t0);
      // Apart, untimed above: the GET /config/ that apply() starts with, to split its load time.
      const t3 = performance.now();
      await s.gateway.current();
      s.get.push(performance.now() - t3);
    }
  }
  const [one, many] = setups;
  const med = (v: number[]) => sample(v).median;
  reportValues('gateway-route-change', `control plane: one hostname changed, render + load through the daemon's Caddy client (median of ${repeats})`, [
    { name: 'render, 1 project', value: Number(med(one.render).toFixed(2)), unit: 'ms' },
    { name: 'render, 1,000 projects', value: Number(med(many.render).toFixed(2)), unit: 'ms' },
    { name: 'load (GET /config/ + POST /load), 1 project', value: Number(med(one.load).toFixed(2)), unit: 'ms' },
    { name: 'load (GET /config/ + POST /load), 1,000 projects', value: Number(med(many.load).toFixed(2)), unit: 'ms' },
    { name: 'of which GET /config/ (timed apart), 1 project', value: Number(med(one.get).toFixed(2)), unit: 'ms' },
    { name: 'of which GET /config/ (timed apart), 1,000 projects', value: Number(med(many.get).toFixed(2)), unit: 'ms' },
    { name: 'render + load, 1 project', value: Number(med(one.total).toFixed(2)), unit: 'ms' },
    { name: 'render + load, 1,000 projects', value: Number(med(many.total).toFixed(2)), unit: 'ms' },
    { name: 'ratio 1,000 ÷ 1 (render + load)', value: Number((med(many.total) / med(one.total)).toFixed(1)), unit: '×' },
  ]);
}

export const gatewayBench: Bench = {
  name: 'gateway',
  description: `latency through Caddy with 1 vs 1,000 rendered projects (sequential keep-alive requests)`,
  run,
};
