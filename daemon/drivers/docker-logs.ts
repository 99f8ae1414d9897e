// A container's output as lines, from the Engine API's `logs` endpoint. Without a TTY the engine multiplexes stdout
// and stderr into frames (8-byte header: stream, 3 zero bytes, big-endian length); the parser below is pure and
// incremental, because a followed stream cuts frames wherever the socket does.
import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';
import type { LogOptions } from '../core/types.ts';

/** Splits multiplexed frames into text lines; `push` returns the lines completed by a chunk, `end` the rest. */
export function createFrameParser(): { push(chunk: Buffer): string[]; end(): string[] } {
  let pending: Buffer = Buffer.alloc(0);
  // One decoder and line buffer per stream, so stdout and stderr interleave by whole lines, not mid-character.
  const streams = new Map<number, { decoder: StringDecoder; rest: string }>();
  const streamOf = (n: number) => {
    let s = streams.get(n);
    if (!s) streams.set(n, (s = { decoder: new StringDecoder('utf8'), rest: '' }));
    return s;
  };
  const split = (s: { rest: string }, text: string): string[] => {
    const parts = (s.rest + text).split('\n');
    s.rest = parts.pop() ?? '';
    return parts.map((l) => l.replace(/\r$/, ''));
  };
  return {
    push(chunk) {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const out: string[] = [];
      while (pending.length >= 8) {
        const size = pending.readUInt32BE(4);
        if (pending.length < 8 + size) break;
        const s = streamOf(pending[0]);
        out.push(...split(s, s.decoder.write(pending.subarray(8, 8 + size))));
        pending = pending.subarray(8 + size);
      }
      return out;
    },
    end() {
      const out: string[] = [];
      for (const s of streams.values()) {
        const last = s.rest + s.decoder.end();
        if (last) out.push(last.replace(/\r$/, ''));
        s.rest = '';
      }
      return out;
    },
  };
}

/** The lines of `container`'s output: the last `lines`, then with `follow` new ones until `signal` aborts. */
export async function* containerLogLines(container: Docker.Container, opts: LogOptions): AsyncGenerator<string> {
  const parser = createFrameParser();
  if (!opts.follow) {
    const buf = await container.logs({ stdout: true, stderr: true, follow: false, tail: Math.max(0, Math.floor(opts.lines)) });
    yield* parser.push(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)));
    yield* parser.end();
    return;
  }
  const stream = (await container.logs({ stdout: true, stderr: true, follow: true, tail: Math.max(0, Math.floor(opts.lines)) })) as NodeJS.ReadableStream & { destroy(): void };
  const abort = () => stream.destroy();
  opts.signal?.addEventListener('abort', abort, { once: true });
  try {
    if (opts.signal?.aborted) return;
    for await (const chunk of stream) yield* parser.push(chunk as Buffer);
    yield* parser.end();
  } catch (err) {
    if (!opts.signal?.aborted) throw err;
  } finally {
    opts.signal?.removeEventListener('abort', abort);
    stream.destroy();
  }
}
