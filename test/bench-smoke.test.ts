// Smoke test of the scale benchmark: `npx tsx test/bench/run.ts scale --quick` as a child process, on the real
// daemon, Postgres and git. It must print every table of figures 1-6 and write its results JSON. No timing is
// asserted: the numbers are the benchmark's business, not a pass/fail of the suite.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SCALE_TITLES } from './bench/scale.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUDGET_MS = 230_000;

function runBench(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', ['tsx', 'test/bench/run.ts', 'scale', '--quick'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += String(d); });
    child.stderr.on('data', (d) => { stderr += String(d); });
    // SIGTERM: run.ts tears down what it started (clusters, daemons, instances) before it exits.
    const timer = setTimeout(() => child.kill('SIGTERM'), BUDGET_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm run bench -- scale --quick', () => {
  it('prints every table of figures 1-6 and writes a results JSON', async () => {
    const { code, stdout, stderr } = await runBench();
    const context = `exit ${code}\n--- stdout\n${stdout.slice(-4000)}\n--- stderr\n${stderr.slice(-4000)}`;
    expect(code, context).toBe(0);
    for (const title of Object.values(SCALE_TITLES)) expect(stdout, `missing table "${title}"\n${context}`).toContain(title);
    const path = /^results: (.+\.json)$/m.exec(stdout)?.[1];
    expect(path, context).toBeTruthy();
    expect(existsSync(path!)).toBe(true);
    try {
      const results = JSON.parse(readFileSync(path!, 'utf8'));
      expect(results.quick).toBe(true);
      expect(results.benches).toEqual(['scale']);
      const titles = results.tables.map((t: { title: string }) => t.title);
      for (const title of Object.values(SCALE_TITLES)) expect(titles).toContain(title);
    } finally {
      rmSync(path!, { force: true });
    }
  }, 240_000);
});
