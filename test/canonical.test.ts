// canonicalJson: the equality every "did this change?" decision (plan, gateway, registry) rests on.
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../daemon/core/canonical.ts';

describe('canonicalJson', () => {
  it.each<[string, unknown, string]>([
    ['keys sorted', { b: 1, a: 2, c: 3 }, '{"a":2,"b":1,"c":3}'],
    ['keys sorted when given in reverse', { e: 5, d: 4, c: 3, b: 2, a: 1 }, '{"a":1,"b":2,"c":3,"d":4,"e":5}'],
    ['keys sorted by code unit, not locale (upper case first)', { b: 1, B: 2, a: 3, A: 4 }, '{"A":4,"B":2,"a":3,"b":1}'],
    ['nested objects sorted too', { z: { y: 1, x: [{ b: 1, a: 2 }] }, a: null }, '{"a":null,"z":{"x":[{"a":2,"b":1}],"y":1}}'],
    ['arrays keep their order', ['b', 'a', { d: 1, c: 2 }], '["b","a",{"c":2,"d":1}]'],
    ['null stays null', null, 'null'],
    ['undefined reads as null', undefined, 'null'],
    ['a string is quoted', 'x', '"x"'],
    ['a number', 42, '42'],
    ['an undefined field is left out', { a: undefined, b: 1 }, '{"b":1}'],
  ])('%s', (_name, value, want) => {
    expect(canonicalJson(value)).toBe(want);
  });

  it.each<[string, unknown, unknown]>([
    ['key order', { env: { A: '1', B: '2' }, port: 1 }, { port: 1, env: { B: '2', A: '1' } }],
    ['many keys in every order', { k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6 }, { k6: 6, k3: 3, k5: 5, k1: 1, k4: 4, k2: 2 }],
  ])('equal whatever the %s', (_name, a, b) => {
    expect(canonicalJson(a)).toBe(canonicalJson(b));
  });

  it('different for a different array order (a list is ordered)', () => {
    expect(canonicalJson({ aliases: ['a', 'b'] })).not.toBe(canonicalJson({ aliases: ['b', 'a'] }));
  });
});
