// The file system handed to isomorphic-git. It wraps its `fs` argument anew on every call and, to tell a promise
// API from a callback one, calls `readFile()` with no arguments, which node answers with a TypeError (a stack
// trace and a rejected promise) each time: about 1 ms of CPU in a webhook pass that reads one project. This is
// node's promise API with that probe answered at once, and the reads answered from the calling thread: `readFile`,
// and `stat`, `lstat`, `readdir` and `readlink`, which isomorphic-git calls on every command (it stats `.git` to
// find the git dir before each object read, and lists `objects/pack` for each packed object). A pass reads a
// handful of small loose objects and refs one after another, and each trip through libuv's thread pool (shared
// with crypto and every other file read) waited longest on a busy machine. A pack file is read whole once per
// reader (isomorphic-git keeps it in its cache). Every other call, writes included, goes to node unchanged.
import fs from 'node:fs';

type Promises = typeof fs.promises;

/** `f`'s result as a settled promise: a local file system answers these faster than a thread-pool round trip. */
function now<A extends unknown[], R>(f: (...args: A) => R): (...args: A) => Promise<R> {
  return (...args: A) => {
    try {
      return Promise.resolve(f(...args));
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

const readNow = now((...args: unknown[]) => fs.readFileSync(args[0] as fs.PathOrFileDescriptor, args[1] as { encoding?: null }));

const promises: Promises = {
  ...fs.promises,
  readFile: ((...args: unknown[]) => (args.length === 0 ? Promise.resolve() : readNow(...args))) as Promises['readFile'],
  stat: now((path: fs.PathLike, opts?: fs.StatOptions) => fs.statSync(path, opts)) as Promises['stat'],
  lstat: now((path: fs.PathLike, opts?: fs.StatOptions) => fs.lstatSync(path, opts)) as Promises['lstat'],
  readdir: now((path: fs.PathLike, opts?: unknown) => fs.readdirSync(path, opts as { encoding: null })) as unknown as Promises['readdir'],
  readlink: now((path: fs.PathLike, opts?: unknown) => fs.readlinkSync(path, opts as { encoding: null })) as unknown as Promises['readlink'],
};

/** `{ promises }`, enumerable, which isomorphic-git binds directly. */
export const gitFs = { promises } as unknown as typeof fs;
