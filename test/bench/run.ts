// `npm run bench`: runs each benchmark in turn and prints its report. Not a test: numbers, no assertions.
// Add a benchmark by appending a module here; `npm run bench -- <name>` runs only the ones named.
//   npm run bench -- --quick                 quick mode (smaller fleets, fewer repeats)
//   npm run bench -- scale ops               only these benchmarks
//   npm run bench -- --compare A.json B.json print two saved runs side by side, run nothing
// Every run writes bench/results/<ISO time>.json (git-ignored) with every table printed through lib.ts.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { gatewayBench } from './gateway.ts';
import { destroyAll, reported, writeResults, type Results, type Row, type Table, type ValueRow, type ValueTable } from './lib.ts';
import { scaleBench } from './scale.ts';
import { validateBench } from './validate.ts';
// ---- other benchmark modules: import here and add to `benches` below -------------------------------------------
import { opsBench } from './ops.ts';
// -----------------------------------------------------------------------------------------------------------------

export interface Bench {
  name: string;
  description: string;
  /** Runs bounded in time and count, on loopback only; prints its own report. */
  run(): Promise<void>;
}

const benches: Bench[] = [
  validateBench,
  gatewayBench,
  scaleBench,
  // ---- other benchmarks (figures 7-9: ops) ----
  opsBench,
];

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// ---------------------------------------------------------------------------------------------------------------
// --compare

const isRatio = (t: Table | ValueTable): t is Table => 'rows' in t;
const num = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : Number.isInteger(n) || n >= 100 ? n.toFixed(0) : n.toFixed(2));

function compare(aPath: string, bPath: string): void {
  const load = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Results;
  const a = load(aPath);
  const b = load(bPath);
  console.log(`A: ${aPath} (${a.at}${a.quick ? ', quick' : ''}, node ${a.node}, ${a.cpus} cpus)`);
  console.log(`B: ${bPath} (${b.at}${b.quick ? ', quick' : ''}, node ${b.node}, ${b.cpus} cpus)`);
  const key = (t: Table | ValueTable) => `${t.figure}\u0000${t.title}`;
  const bTables = new Map(b.tables.map((t) => [key(t), t]));
  const seen = new Set<string>();
  for (const ta of a.tables) {
    seen.add(key(ta));
    const tb = bTables.get(key(ta));
    console.log(`\n[${ta.figure}] ${ta.title}${tb ? '' : '   (only in A)'}`);
    if (isRatio(ta)) {
      const rowsB = tb && isRatio(tb) ? tb.rows : [];
      const lines: string[][] = [];
      const rowKey = (r: Row) => `${r.fleet}\u0000${r.measured}\u0000${r.reference}`;
      for (const ra of ta.rows) {
        const rb = rowsB.find((r) => rowKey(r) === rowKey(ra)) ?? rowsB.find((r) => r.fleet === ra.fleet);
        lines.push([
          ra.fleet, `${ra.measured} / ${ra.reference}`,
          `${num(ra.ratio)}×`, rb ? `${num(rb.ratio)}×` : '-',
          `${num(ra.m.median)}`, rb ? `${num(rb.m.median)}` : '-',
          rb && Number.isFinite(ra.m.median) && ra.m.median > 0 ? `${rb.m.median >= ra.m.median ? '+' : ''}${((rb.m.median / ra.m.median - 1) * 100).toFixed(0)}%` : '',
          ra.target ?? '', `${ra.ok === undefined ? '' : ra.ok ? 'ok' : 'NO'}/${rb?.ok === undefined ? '' : rb.ok ? 'ok' : 'NO'}`,
        ]);
      }
      grid(['fleet', 'measured / reference', 'A ratio', 'B ratio', 'A median ms', 'B median ms', 'B vs A', 'target', 'ok A/B'], lines);
    } else {
      const valuesB: ValueRow[] = tb && !isRatio(tb) ? tb.values : [];
      const lines = ta.values.map((va) => {
        const vb = valuesB.find((v) => v.name === va.name);
        const show = (v: ValueRow | undefined) => (v === undefined ? '-' : typeof v.value === 'number' ? num(v.value) : v.value);
        return [va.name, show(va), show(vb), va.unit ?? '', va.target ?? ''];
      });
      grid(['name', 'A', 'B', 'unit', 'target'], lines);
    }
  }
  for (const tb of b.tables) if (!seen.has(key(tb))) console.log(`\n[${tb.figure}] ${tb.title}   (only in B)`);
}

function grid(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(' | ').trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-+-'));
  for (const r of rows) console.log(line(r));
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const ci = args.indexOf('--compare');
  if (ci >= 0) {
    const files = args.slice(ci + 1).filter((a) => !a.startsWith('--'));
    if (files.length !== 2) {
      console.error('usage: npm run bench -- --compare A.json B.json');
      process.exit(2);
    }
    compare(files[0], files[1]);
    return;
  }
  const flags = args.filter((a) => a.startsWith('--'));
  const unknownFlags = flags.filter((f) => f !== '--quick');
  if (unknownFlags.length > 0) {
    console.error(`unknown option: ${unknownFlags.join(', ')}; known: --quick, --compare A.json B.json`);
    process.exit(2);
  }
  const wanted = args.filter((a) => !a.startsWith('--'));
  const unknown = wanted.filter((w) => !benches.some((b) => b.name === w));
  if (unknown.length > 0) {
    console.error(`unknown benchmark: ${unknown.join(', ')}; known: ${benches.map((b) => b.name).join(', ')}`);
    process.exit(2);
  }
  // The benches await child processes and sockets some of which are unref'd: keep the loop alive meanwhile.
  const keepAlive = setInterval(() => {}, 60_000);
  const onSignal = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: stopping what the benchmarks started`);
    void destroyAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const ran: string[] = [];
  try {
    for (const bench of benches.filter((b) => wanted.length === 0 || wanted.includes(b.name))) {
      console.log(`\n== ${bench.name}: ${bench.description}`);
      const started = Date.now();
      ran.push(bench.name);
      await bench.run();
      console.log(`== ${bench.name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    // Whatever a benchmark left behind (an error midway) is torn down here.
    await destroyAll();
    clearInterval(keepAlive);
    if (reported().length > 0) console.log(`\nresults: ${writeResults(ROOT, ran, availableParallelism())}`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
