// A swarm service's output as lines, from the manager's ServiceLogs endpoint: every task of the service, on whichever
// node it ran. The engine tails each task on its own and sends their lines as they come, so a read asks for
// timestamps, puts the lines in time order (the newest task's last) and keeps the last `lines`; a follow yields
// them as they arrive. The timestamps are stripped: the lines are the tasks' own, as `docker service logs --raw`.
import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';
import type { LogOptions } from '../core/types.ts';
import { createFrameParser } from './docker-logs.ts';

/** A line as the engine sends it with `timestamps`: an RFC 3339 time with up to 9 fraction digits, a space, the text. */
const STAMPED = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) (.*)$/s;

/** The line's time as a sortable key (the fraction padded: Go trims its trailing zeros) and its text. */
export function splitStamp(line: string): { key: string; text: string } {
  const m = STAMPED.exec(line);
  if (!m) return { key: '', text: line };
  const at = Date.parse(`${m[1]}${m[3]}`);
  return { key: `${String(at).padStart(15, '0')}.${(m[2] ?? '').padEnd(9, '0')}`, text: m[4] };
}

/** A TTY's output is not multiplexed: plain text, cut into lines the same way. */
function createRawParser(): { push(chunk: Buffer): string[]; end(): string[] } {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  return {
    push(chunk) {
      const parts = (rest + decoder.write(chunk)).split('\n');
      rest = parts.pop() ?? '';
      return parts.map((l) => l.replace(/\r$/, ''));
    },
    end() {
      const last = rest + decoder.end();
      rest = '';
      return last ? [last.replace(/\r$/, '')] : [];
    },
  };
}

/** The lines of `service`'s tasks: the last `lines` in time order, then with `follow` new ones until `signal` aborts. */
export async function* serviceLogLines(service: Docker.Service, opts: LogOptions & { tty?: boolean }): AsyncGenerator<string> {
  const tail = Math.max(0, Math.floor(opts.lines));
  const began = Date.now();
  // The engine tails every task, a follow included: the last lines come from a read, the follow starts after them.
  const buf = (await service.logs({ stdout: true, stderr: true, timestamps: true, tail, follow: false })) as unknown;
  const read = opts.tty ? createRawParser() : createFrameParser();
  const stamped = [...read.push(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf ?? ''))), ...read.end()];
  const parts = stamped.map(splitStamp).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (tail > 0) yield* parts.slice(-tail).map((p) => p.text);
  if (!opts.follow || opts.signal?.aborted) return;
  // From the newest line read on (the engine's `since` includes it: skipped below), else from the read's start.
  const lastKey = parts.at(-1)?.key ?? '';
  const since = lastKey ? sinceOf(lastKey) : (began / 1000).toFixed(3);
  const stream = (await service.logs({ stdout: true, stderr: true, timestamps: true, follow: true, since } as Docker.ContainerLogsOptions)) as NodeJS.ReadableStream & { destroy(): void };
  const abort = () => stream.destroy();
  opts.signal?.addEventListener('abort', abort, { once: true });
  const parser = opts.tty ? createRawParser() : createFrameParser();
  const fresh = (lines: string[]) => lines.map(splitStamp).filter((p) => !p.key || p.key > lastKey).map((p) => p.text);
  try {
    if (opts.signal?.aborted) return;
    for await (const chunk of stream) yield* fresh(parser.push(chunk as Buffer));
    yield* fresh(parser.end());
  } catch (err) {
    if (!opts.signal?.aborted) throw err;
  } finally {
    opts.signal?.removeEventListener('abort', abort);
    stream.destroy();
  }
}

/** A sort key back as the engine's `since`: seconds and nanoseconds. */
function sinceOf(key: string): string {
  const [ms, frac] = key.split('.');
  return `${Math.floor(Number(ms) / 1000)}.${frac}`;
}
