// The docker driver's `logs`: the engine's multiplexed frames parsed however the socket cuts them (generated
// chunkings), and a real container's output through podman's Docker-compatible API.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerDriver } from '../daemon/drivers/docker.ts';
import { createFrameParser } from '../daemon/drivers/docker-logs.ts';
import { collectLines } from '../daemon/drivers/log-file.ts';
import type { Driver } from '../daemon/core/types.ts';
import { buildTestImage } from './harness/image.ts';
import { startPodman, type TestPodman } from './harness/podman.ts';

const frame = (stream: number, text: string | Buffer) => {
  const body = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
};

describe('frame parser', () => {
  it('parses stdout and stderr frames into lines, a line split over frames included', () => {
    const p = createFrameParser();
    expect(p.push(Buffer.concat([frame(1, 'one\ntw'), frame(2, 'err 1\n'), frame(1, 'o\r\nthree')]))).toEqual(['one', 'err 1', 'two']);
    expect(p.end()).toEqual(['three']);
  });

  it('gives the same lines however the bytes are cut into chunks', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.constantFrom(1, 2), fc.string({ unit: 'binary', maxLength: 40 })), { maxLength: 12 }),
      fc.array(fc.nat(30), { maxLength: 20 }),
      (frames, cuts) => {
        // One stream only, so the expected lines are simply its text split on \n.
        const bytes = Buffer.concat(frames.map(([, t]) => frame(1, t)));
        const whole = createFrameParser();
        const want = [...whole.push(bytes), ...whole.end()];
        const p = createFrameParser();
        const got: string[] = [];
        let at = 0;
        for (const c of cuts) {
          got.push(...p.push(bytes.subarray(at, Math.min(bytes.length, at + c))));
          at = Math.min(bytes.length, at + c);
        }
        got.push(...p.push(bytes.subarray(at)), ...p.end());
        expect(got).toEqual(want);
        const text = frames.map(([, t]) => t).join('');
        const parts = text.split('\n');
        if (parts.at(-1) === '') parts.pop();
        expect(want).toEqual(parts.map((l) => l.replace(/\r$/, '')));
      },
    ), { numRuns: 300 });
  });
});

describe('docker driver logs (podman)', () => {
  const run = Math.random().toString(36).slice(2, 8);
  const network = `fleet-logs-${run}`;
  let podman: TestPodman;
  let docker: Docker;
  let image: string;
  let dir: string;
  let driver: Driver;

  beforeAll(async () => {
    podman = await startPodman();
    docker = new Docker({ socketPath: podman.socketPath });
    image = await buildTestImage(podman, 'tiny');
    dir = mkdtempSync(join(tmpdir(), 'fleet-docker-logs-'));
    writeFileSync(join(dir, 'schema.ts'), 'export interface Widget { id: string; }\n');
    driver = createDockerDriver({ socketPath: podman.socketPath, network, publishHost: '127.0.0.1', log: pino({ level: 'silent' }) });
  });

  afterAll(async () => {
    await driver?.close?.();
    if (docker) {
      const mine = await docker.listContainers({ all: true, filters: { label: ['atomo.fleet.managed=true'] } });
      for (const c of mine.filter((c) => c.Labels['atomo.fleet.project']?.endsWith(run))) {
        await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
      }
      await docker.getNetwork(network).remove().catch(() => {});
    }
    await podman?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads the current container\'s output, follows it until aborted, and yields nothing for an unknown project', async () => {
    const id = `talk${run}`;
    await driver.start({
      id, commit: 'c0ffee1234567890c0ffee1234567890c0ffee12', image, env: {}, schemaPath: join(dir, 'schema.ts'), port: 3000,
      resources: {}, specHash: `1${id}`.padEnd(16, '0'), logDir: dir,
    });
    await expect.poll(async () => collectLines(driver.logs!(id, { lines: 10 })), { timeout: 15_000 }).toEqual(['tiny test server on 3000']);
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const line of driver.logs!(id, { lines: 5, follow: true, signal: ac.signal })) seen.push(line);
    })();
    await expect.poll(() => seen, { timeout: 15_000 }).toEqual(['tiny test server on 3000']);
    ac.abort();
    await done;
    expect(await collectLines(driver.logs!(`nobody${run}`, { lines: 10 }))).toEqual([]);
    await driver.stop(id);
  }, 120_000);
});
