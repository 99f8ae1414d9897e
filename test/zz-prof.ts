import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { generateFleet, quietLogger } from './bench/lib.ts';
import { startCaddy } from './harness/caddy.ts';
const get = (port: number, host: string) => new Promise<number>((ok) => { http.get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false }, (r) => { r.resume(); r.on('end', () => ok(r.statusCode ?? 0)); }).on('error', () => ok(0)); });
const caddy = await startCaddy();
const f = await generateFleet({ n: 100, running: 1 });
try {
  const running = await f.boot({ manual: true, caddyAdmin: caddy.adminUrl, gatewayOverride: { listen: `127.0.0.1:${caddy.httpPort}`, admin: caddy.adminListen } });
  const d = running.daemon as any;
  for (let i = 0; i < 8; i++) await d.pass();
  const id = f.ids[0];
  // wrap methods to time them
  const marks: [string, number][] = [];
  const T0 = { t: 0 };
  const wrap = (obj: any, name: string, label: string) => { const orig = obj[name].bind(obj); obj[name] = async (...a: any[]) => { const s = performance.now(); try { return await orig(...a); } finally { marks.push([label, performance.now() - s]); } }; };
  wrap(d.opts.source, 'sync', 'source.sync');
  wrap(d.registry, 'list', 'registry.list'); wrap(d.registry, 'listKnown', 'registry.listKnown');
  wrap(d.registry, 'updateWithEvents', 'registry.updateWithEvents'); wrap(d.registry, 'update', 'registry.update');
  wrap(d.registry, 'setState', 'registry.setState'); wrap(d.registry, 'getState', 'registry.getState'); wrap(d.registry, 'tryLock', 'registry.tryLock');
  wrap(d.opts.gateway.caddy, 'apply', 'caddy.apply');
  wrap(d.opts.driver, 'list', 'driver.list');
  if (d.opts.driver.retire) wrap(d.opts.driver, 'retire', 'driver.retire');
  const aliases: string[] = [];
  const sums = new Map<string, number[]>();
  const totals: number[] = [];
  const sess = new Session(); sess.connect(); await sess.post('Profiler.enable'); await sess.post('Profiler.setSamplingInterval', { interval: 100 }); await sess.post('Profiler.start');
  for (let k = 1; k <= 30; k++) {
    const host = `new${k}.bench.test`; aliases.push(host);
    const p = `projects/${id}/project.yaml`;
    const m = parse(readFileSync(`${f.repo.dir}/${p}`, 'utf8'));
    f.repo.write(p, stringify({ ...m, aliases: [...aliases] }));
    f.repo.commit(`alias ${host}`);
    await d.pass(); // at rest? no: measure the commit pass
    marks.length = 0;
    // new commit again for measurement
    const host2 = `x${k}.bench.test`; aliases.push(host2);
    f.repo.write(p, stringify({ ...m, aliases: [...aliases] }));
    f.repo.commit(`alias ${host2}`);
    await d.pass(); marks.length = 0; // rest pass
    await d.pass(); marks.length = 0;
    const host3 = `y${k}.bench.test`; aliases.push(host3);
    f.repo.write(p, stringify({ ...m, aliases: [...aliases] }));
    f.repo.commit(`alias ${host3}`);
    const t0 = performance.now();
    (globalThis as any).__t = (l: string) => marks.push(['@' + l, performance.now() - t0]);
    await d.pass();
    (globalThis as any).__t = undefined;
    const tot = performance.now() - t0;
    if (k > 3) { totals.push(tot); for (const [l, ms] of marks) { const a = sums.get(l) ?? []; a.push(ms); sums.set(l, a); } }
    if ((await get(caddy.httpPort, host3)) !== 200) console.log('not serving', host3);
    marks.length = 0;
  }
  const { profile } = await sess.post('Profiler.stop') as any; writeFileSync('/tmp/exp/pass.cpuprofile', JSON.stringify(profile));
  const med = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
  console.log('pass total median', med(totals).toFixed(2), 'n', totals.length);
  for (const [l, a] of sums) console.log(l.padEnd(28), 'calls/pass', (a.length / totals.length).toFixed(1), 'median', med(a).toFixed(2), 'sum/pass', (a.reduce((x, y) => x + y, 0) / totals.length).toFixed(2));
  await f.stopDaemon();
} finally { await f.destroy(); await caddy.stop(); }
