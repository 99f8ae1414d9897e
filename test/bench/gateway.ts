// Gateway latency with 1 and with 1,000 projects rendered by renderCaddyConfig, through the real Caddy.
// One upstream node server stands in for every instance; requests are sequential over one kept-alive socket.
import http from 'node:http';
import pino from 'pino';
import { createCaddyGateway } from '../../daemon/gateway/caddy.ts';
import { renderCaddyConfig } from '../../daemon/gateway/render.ts';
import type { FleetConfig, RegistryRow } from '../../daemon/core/types.ts';
import { startCaddy } from '../harness/caddy.ts';
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

interface Series { p50: number; p99: number; count: number; status: number }
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
    return { p50: at(0.5), p99: at(0.99), count: t.length, status: status[i] };
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
  } finally {
    await small.stop();
    await large.stop();
    await new Promise((done) => upstreamServer.close(done));
  }
}

export const gatewayBench: Bench = {
  name: 'gateway',
  description: `latency through Caddy with 1 vs 1,000 rendered projects (sequential keep-alive requests)`,
  run,
};
