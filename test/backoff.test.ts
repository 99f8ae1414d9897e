// Restart pacing at its edges: each case is a sequence of events on one instance and what the daemon then sees.
import { describe, expect, it } from 'vitest';
import { Backoff, type BackoffOptions, type StartDecision } from '../daemon/core/backoff.ts';

type Event =
  | ['started', number, string?]
  | ['exit', number | null | undefined, number]
  | ['healthy', number]
  | ['failedStart', number, string?]
  | ['forSpec', string]
  | ['forget'];

const OPTS: BackoffOptions = { baseMs: 1000, capMs: 4000, stallAfter: 3, stableMs: 10_000 };

/** Replays events on project `a`; the last `exit` gives the decision. */
function replay(events: Event[], opts: BackoffOptions | 'defaults' = OPTS) {
  const b = opts === 'defaults' ? new Backoff() : new Backoff(opts);
  let decision: StartDecision | undefined;
  for (const e of events) {
    if (e[0] === 'started') b.started('a', e[1], e[2]);
    else if (e[0] === 'exit') decision = b.decide('a', e[1], e[2]);
    else if (e[0] === 'healthy') b.healthy('a', e[1]);
    else if (e[0] === 'failedStart') b.failedStart('a', e[1], e[2]);
    else if (e[0] === 'forSpec') b.forSpec('a', e[1]);
    else b.forget('a');
  }
  return { decision, failures: b.failures('a'), stalled: b.stalled('a') };
}

/** n crashes at `at`, each of an instance started with `spec` (none: the caller did not say). */
function crashes(n: number, at = 0, spec?: string): Event[] {
  return Array.from({ length: n }, (): Event[] => [['started', at, spec], ['exit', 1, at]]).flat();
}

describe('Backoff', () => {
  it.each<[string, Event[], { decision?: StartDecision; failures: number; stalled: boolean }]>([
    ['never started: start now, nothing counted', [['exit', 1, 0]],
      { decision: { start: true }, failures: 0, stalled: false }],
    ['exit code 0 (schema watcher restart): start now, not a crash', [['started', 0], ['exit', 0, 50]],
      { decision: { start: true }, failures: 0, stalled: false }],
    ['exit code 0 after a crash: start now, the crash stays counted', [...crashes(1), ['started', 10], ['exit', 0, 20]],
      { decision: { start: true }, failures: 1, stalled: false }],
    ['unknown exit (null) is a crash', [['started', 0], ['exit', null, 0]],
      { decision: { start: false, waitMs: 1000 }, failures: 1, stalled: false }],
    ['unknown exit (undefined) is a crash', [['started', 0], ['exit', undefined, 0]],
      { decision: { start: false, waitMs: 1000 }, failures: 1, stalled: false }],
    ['an exit is classified once: asking again waits out the same delay', [['started', 0], ['exit', 1, 0], ['exit', 1, 400]],
      { decision: { start: false, waitMs: 600 }, failures: 1, stalled: false }],
    ['the delay ends exactly at base: start', [['started', 0], ['exit', 1, 0], ['exit', 1, 1000]],
      { decision: { start: true }, failures: 1, stalled: false }],
    ['one ms before the delay ends: wait 1 ms', [['started', 0], ['exit', 1, 0], ['exit', 1, 999]],
      { decision: { start: false, waitMs: 1 }, failures: 1, stalled: false }],
    ['two crashes: not stalled yet, wait 2 s', crashes(2),
      { decision: { start: false, waitMs: 2000 }, failures: 2, stalled: false }],
    ['three crashes: stalled, wait 4 s', crashes(3),
      { decision: { start: false, waitMs: 4000 }, failures: 3, stalled: true }],
    ['five crashes: the wait stays at the cap', crashes(5),
      { decision: { start: false, waitMs: 4000 }, failures: 5, stalled: true }],
    ['a start that threw counts as a crash and waits base', [['failedStart', 100], ['exit', undefined, 100]],
      { decision: { start: false, waitMs: 1000 }, failures: 1, stalled: false }],
    ['two starts that threw wait twice as long', [['failedStart', 0], ['failedStart', 0], ['exit', undefined, 0]],
      { decision: { start: false, waitMs: 2000 }, failures: 2, stalled: false }],
    ['after a start that threw, the next exit report is not a second crash', [['started', 0], ['failedStart', 0], ['exit', 1, 500]],
      { decision: { start: false, waitMs: 500 }, failures: 1, stalled: false }],
    ['failed starts and crashes add up to Stalled', [['failedStart', 0], ...crashes(2)],
      { decision: { start: false, waitMs: 4000 }, failures: 3, stalled: true }],
    ['healthy for exactly stableMs forgives the crashes', [...crashes(2), ['started', 5000], ['healthy', 15_000]],
      { failures: 0, stalled: false }],
    ['healthy for less than stableMs forgives nothing', [...crashes(2), ['started', 5000], ['healthy', 14_999]],
      { failures: 2, stalled: false }],
    ['healthy while not running (already exited) forgives nothing', [...crashes(2), ['healthy', 100_000]],
      { failures: 2, stalled: false }],
    ['forget: a new start is the first again', [...crashes(3), ['forget'], ['started', 0], ['exit', 1, 0]],
      { decision: { start: false, waitMs: 1000 }, failures: 1, stalled: false }],
  ])('%s', (_name, events, want) => {
    const got = replay(events);
    if (want.decision) expect(got.decision).toEqual(want.decision);
    expect({ failures: got.failures, stalled: got.stalled }).toEqual({ failures: want.failures, stalled: want.stalled });
  });

  const FRESH = { decision: { start: true }, failures: 0, stalled: false } as const;
  const PACED = { decision: { start: false, waitMs: 4000 }, failures: 3, stalled: true } as const;

  it.each<[string, Event[], { decision?: StartDecision; failures: number; stalled: boolean }]>([
    ['the same spec again: still paced', [...crashes(3, 0, 'v1'), ['forSpec', 'v1'], ['exit', 1, 0]], PACED],
    ['a new spec (a fix committed during the crash loop): starts afresh', [...crashes(3, 0, 'v1'), ['forSpec', 'v2'], ['exit', 1, 0]], FRESH],
    ['no spec recorded: still paced whatever spec comes', [...crashes(3), ['forSpec', 'v2'], ['exit', 1, 0]], PACED],
    ['never seen: nothing to forget', [['forSpec', 'v1'], ['exit', 1, 0]], FRESH],
    ['a start without a spec keeps the one recorded', [...crashes(2, 0, 'v1'), ...crashes(1), ['forSpec', 'v2'], ['exit', 1, 0]], FRESH],
    ['a failed start records its spec', [['failedStart', 0, 'v1'], ['forSpec', 'v2'], ['exit', 1, 0]], FRESH],
    ['a failed start of the same spec stays paced', [['failedStart', 0, 'v1'], ['forSpec', 'v1'], ['exit', 1, 0]],
      { decision: { start: false, waitMs: 1000 }, failures: 1, stalled: false }],
    ['a failed start without a spec keeps the one recorded', [['started', 0, 'v1'], ['failedStart', 0], ['forSpec', 'v2'], ['exit', 1, 0]], FRESH],
    ['the latest spec tried counts', [...crashes(2, 0, 'v1'), ['failedStart', 0, 'v2'], ['forSpec', 'v2'], ['exit', 1, 0]], PACED],
  ])('spec pacing: %s', (_name, events, want) => {
    const got = replay(events);
    if (want.decision) expect(got.decision).toEqual(want.decision);
    expect({ failures: got.failures, stalled: got.stalled }).toEqual({ failures: want.failures, stalled: want.stalled });
  });

  it('unknown projects have no failures and are not stalled', () => {
    const b = new Backoff(OPTS);
    expect(b.failures('nope')).toBe(0);
    expect(b.stalled('nope')).toBe(false);
  });

  it('projects are paced apart', () => {
    const b = new Backoff(OPTS);
    b.failedStart('a', 0);
    expect(b.decide('b', 1, 0)).toEqual({ start: true });
    expect(b.failures('b')).toBe(0);
  });

  it.each<[string, Event[], { decision?: StartDecision; failures: number; stalled: boolean }]>([
    ['first crash waits 1 s', crashes(1), { decision: { start: false, waitMs: 1000 }, failures: 1, stalled: false }],
    ['third crash is Stalled', crashes(3), { decision: { start: false, waitMs: 4000 }, failures: 3, stalled: true }],
    ['the wait is capped at 60 s', crashes(8), { decision: { start: false, waitMs: 60_000 }, failures: 8, stalled: true }],
    ['healthy 10 s forgives', [...crashes(2), ['started', 0], ['healthy', 10_000]], { failures: 0, stalled: false }],
    ['healthy 9.999 s does not', [...crashes(2), ['started', 0], ['healthy', 9999]], { failures: 2, stalled: false }],
  ])('defaults: %s', (_name, events, want) => {
    const got = replay(events, 'defaults');
    if (want.decision) expect(got.decision).toEqual(want.decision);
    expect({ failures: got.failures, stalled: got.stalled }).toEqual({ failures: want.failures, stalled: want.stalled });
  });
});
