// The file system handed to isomorphic-git. It wraps its `fs` argument anew on every call and, to tell a promise
// API from a callback one, calls `readFile()` with no arguments, which node answers with a TypeError (a stack
// trace and a rejected promise) each time: about 1 ms of CPU in a webhook pass that reads one project. This is
// node's promise API with that probe answered at once, and `readFile` answered from the calling thread: a pass
// reads a handful of small loose objects and refs one after another, and each trip through libuv's thread pool
// (shared with Postgres sockets' DNS, crypto and every other file read) waited longest on a busy machine. A pack
// file is read whole once per reader (isomorphic-git keeps it in its cache). Every other call goes to node unchanged.
import fs from 'node:fs';

type Promises = typeof fs.promises;

/** A read answered from the calling thread: git's objects and refs are small files, read many times a pass. */
function readNow(...args: Parameters<Promises['readFile']>): Promise<string | Buffer> {
  try {
    return Promise.resolve(fs.readFileSync(args[0] as fs.PathOrFileDescriptor, args[1] as { encoding?: null }));
  } catch (err) {
    return Promise.reject(err);
  }
}

const promises: Promises = {
  ...fs.promises,
  readFile: ((...args: Parameters<Promises['readFile']>) =>
    ((args as unknown[]).length === 0 ? Promise.resolve() : readNow(...args))) as Promises['readFile'],
};

/** `{ promises }`, enumerable, which isomorphic-git binds directly. */
export const gitFs = { promises } as unknown as typeof fs;
