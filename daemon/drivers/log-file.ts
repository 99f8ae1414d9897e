// An instance's log file read the way `tail -n N [-f]` does: the last lines first, then what is appended, until the
// caller aborts. The process driver's instances write straight into the file (a file descriptor outlives the
// daemon), so reading it is all `fleet logs` and the dashboard need.
import { closeSync, constants, lstatSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { LogOptions } from '../core/types.ts';

const BLOCK = 64 * 1024;
/** How far back the tail reads at most, whatever `lines` asks: a log of one huge line must not fill memory. */
const MAX_TAIL_BYTES = 8 * 1024 * 1024;

function readRange(path: string, start: number, end: number): Buffer {
  // O_NOFOLLOW: the instance owns the folder its log is in and could put a link there.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(end - start);
    let done = 0;
    while (done < buf.length) {
      const n = readSync(fd, buf, done, buf.length - done, start + done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/** The log's size; null when there is no log, or something other than a plain file stands in its place. */
function sizeOf(path: string): number | null {
  try {
    const st = lstatSync(path);
    return st.isFile() ? st.size : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The start offset of the last `lines` lines of a file of `size` bytes (reading blocks from the end). */
function tailStart(path: string, size: number, lines: number): number {
  let pos = size;
  let newlines = 0;
  while (pos > 0 && size - pos < MAX_TAIL_BYTES) {
    const from = Math.max(0, pos - BLOCK);
    const block = readRange(path, from, pos);
    for (let i = block.length - 1; i >= 0; i--) {
      // The newline ending the file's last line does not count: it closes a line, it does not start one.
      if (block[i] === 0x0a && from + i !== size - 1 && ++newlines === lines) return from + i + 1;
    }
    pos = from;
  }
  return pos;
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  if (signal?.aborted) return resolve();
  const t = setTimeout(done, ms);
  function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
  signal?.addEventListener('abort', done, { once: true });
});

/** The last `lines` lines of `path`, oldest first; then, with `follow`, each appended line until `signal` aborts. */
export async function* tailFile(path: string, opts: LogOptions & { pollMs?: number }): AsyncGenerator<string> {
  const lines = Math.max(0, Math.floor(opts.lines));
  let size = sizeOf(path) ?? 0;
  const decoder = new StringDecoder('utf8');
  let rest = '';
  if (size > 0 && lines > 0) {
    const text = decoder.write(readRange(path, tailStart(path, size, lines), size));
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts.slice(-lines)) yield line.replace(/\r$/, '');
    if (!opts.follow && rest) yield rest.replace(/\r$/, '');
  }
  if (!opts.follow) return;
  // Polled rather than watched: inotify misses writes through other mounts and is a limited resource.
  while (!opts.signal?.aborted) {
    await sleep(opts.pollMs ?? 250, opts.signal);
    const now = sizeOf(path) ?? 0;
    if (now < size) {
      // Truncated or replaced: read it from the start.
      size = 0;
      rest = '';
    }
    if (now === size) continue;
    const parts = (rest + decoder.write(readRange(path, size, now))).split('\n');
    size = now;
    rest = parts.pop() ?? '';
    for (const line of parts) yield line.replace(/\r$/, '');
  }
}

/** Everything an iterable of lines yields, into an array (for callers that do not follow). */
export async function collectLines(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(line);
  return out;
}
