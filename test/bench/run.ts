// `npm run bench`: runs each benchmark in turn and prints its report. Not a test: numbers, no assertions.
// Add a benchmark by appending a module here; `npm run bench -- <name>` runs only the ones named.
import { gatewayBench } from './gateway.ts';
import { validateBench } from './validate.ts';

export interface Bench {
  name: string;
  description: string;
  /** Runs bounded in time and count, on loopback only; prints its own report. */
  run(): Promise<void>;
}

const benches: Bench[] = [validateBench, gatewayBench];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !benches.some((b) => b.name === w));
  if (unknown.length > 0) {
    console.error(`unknown benchmark: ${unknown.join(', ')}; known: ${benches.map((b) => b.name).join(', ')}`);
    process.exit(2);
  }
  for (const bench of benches.filter((b) => wanted.length === 0 || wanted.includes(b.name))) {
    console.log(`\n== ${bench.name}: ${bench.description}`);
    const started = Date.now();
    await bench.run();
    console.log(`== ${bench.name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
