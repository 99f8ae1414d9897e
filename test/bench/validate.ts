// Validation time of huge manifests, measured side by side: 2,000 and 20,000 keys of the same shape, with every
// guard that cuts work short turned off (no entry cap, no size cap), so what is timed is the parser, the schema
// check and the issue locator themselves. Linear work gives a 20k ÷ 2k ratio near 10; quadratic work near 100.
import { validateManifestText } from '../../daemon/manifest/validate.ts';
import { checkProject } from '../../daemon/manifest/project.ts';
import type { Bench } from './run.ts';

const REPEATS = 5;

const SHAPES: [string, (n: number) => string][] = [
  ['env entries, flow style', (n) => `env: {${Array.from({ length: n }, (_, i) => `K${i}: "v"`).join(', ')}}`],
  ['unknown top-level keys', (n) => Array.from({ length: n }, (_, i) => `k${i}: 1`).join('\n')],
  ['aliases', (n) => `aliases: [${Array.from({ length: n }, (_, i) => `a${i}.localhost`).join(', ')}]`],
  ['bad env names', (n) => `env: {${Array.from({ length: n }, (_, i) => `k${i}: 1`).join(', ')}}`],
];

const manifest = (body: string) => `id: acme\nhostname: acme.localhost\n${body}\n`;

function times(fn: () => unknown): { min: number; median: number } {
  const ms: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const start = performance.now();
    fn();
    ms.push(performance.now() - start);
  }
  ms.sort((a, b) => a - b);
  return { min: ms[0], median: ms[Math.floor(ms.length / 2)] };
}

const fmt = (n: number) => n.toFixed(1).padStart(8);

export const validateBench: Bench = {
  name: 'validate',
  description: 'manifest validation with 2,000 and 20,000 keys, guards off, and the 20k ÷ 2k ratio (min/median of 5)',
  async run() {
    console.log(`${'shape'.padEnd(26)} ${'2k min'.padStart(8)} ${'2k med'.padStart(8)} ${'20k min'.padStart(8)} ${'20k med'.padStart(8)}   ratio (median)`);
    for (const [name, body] of SHAPES) {
      const small = manifest(body(2_000));
      const big = manifest(body(20_000));
      const a = times(() => validateManifestText('projects/acme/project.yaml', small, { maxEntries: Infinity }));
      const b = times(() => validateManifestText('projects/acme/project.yaml', big, { maxEntries: Infinity }));
      console.log(`${name.padEnd(26)} ${fmt(a.min)} ${fmt(a.median)} ${fmt(b.min)} ${fmt(b.median)}   ${(b.median / a.median).toFixed(1)}×`);
    }
    // The whole folder check as the daemon runs it, over the 64 KiB cap: refused before parsing.
    const huge = manifest(SHAPES[0][1](20_000));
    const full: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const start = performance.now();
      await checkProject('acme', { readFile: async (p) => (p === 'project.yaml' ? huge : 'export interface A { id: string }\n') });
      full.push(performance.now() - start);
    }
    full.sort((x, y) => x - y);
    console.log(`20,000 keys (${(huge.length / 1024).toFixed(0)} KiB) through checkProject, size cap on: min ${full[0].toFixed(2)} ms, median ${full[Math.floor(full.length / 2)].toFixed(2)} ms`);
  },
};
