// The file system handed to isomorphic-git. It wraps its `fs` argument anew on every call and, to tell a promise
// API from a callback one, calls `readFile()` with no arguments, which node answers with a TypeError (a stack
// trace and a rejected promise) each time: about 1 ms of CPU in a webhook pass that reads one project. This is
// node's promise API with that probe answered at once; every real call goes to node unchanged.
import fs from 'node:fs';

type Promises = typeof fs.promises;

const promises: Promises = {
  ...fs.promises,
  readFile: ((...args: Parameters<Promises['readFile']>) =>
    ((args as unknown[]).length === 0 ? Promise.resolve() : fs.promises.readFile(...args))) as Promises['readFile'],
};

/** `{ promises }`, enumerable, which isomorphic-git binds directly. */
export const gitFs = { promises } as unknown as typeof fs;
