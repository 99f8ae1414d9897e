// Names the swarm driver derives from a project id must be names Swarm accepts, for every id the validator accepts
// (swarmkit: a service name is a DNS label component of at most 63 characters; a config name at most 64 of
// [A-Za-z0-9-_.], starting and ending with a letter or digit). Pure checks here; the same ids go through a real
// engine in swarm-hardening.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { schemaConfigName, serviceName } from '../daemon/drivers/swarm-spec.ts';

/** swarmkit's own rules (manager/controlapi: validateAnnotations, validateConfigOrSecretAnnotations). */
// swarmkit's service regex is ^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$ (RE2); the same language without its nested
// quantifiers, which backtrack exponentially in JavaScript on a name that does not match.
export const swarmServiceNameOk = (n: string) => n.length <= 63 && /^[a-zA-Z0-9](?:[-_a-zA-Z0-9]*[a-zA-Z0-9])?$/.test(n);
export const swarmConfigNameOk = (n: string) => n.length <= 64 && /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/.test(n);

/** The project id rule (schemas/project.schema.json /id). */
const ID = /^[a-z][a-z0-9_]{0,39}$/;
export const EDGE_IDS = ['a', 'a_', 'a__', `a${'_'.repeat(39)}`, `a${'b'.repeat(39)}`, `a${'b'.repeat(38)}_`, 'x_1_', 'blog', 'blog_', 'blog__'];
const DIGEST = 'f'.repeat(64);

describe('names the swarm driver derives', () => {
  it.each(EDGE_IDS)('are valid Swarm names for id %j', (id) => {
    expect(ID.test(id)).toBe(true);
    expect(swarmServiceNameOk(serviceName(id))).toBe(true);
    expect(swarmConfigNameOk(schemaConfigName(id, DIGEST))).toBe(true);
  });

  it('keep the names ids that already had valid ones (Swarm cannot rename a service)', () => {
    expect(serviceName('blog')).toBe('fleet-blog');
    expect(serviceName('acme_shop')).toBe('fleet-acme_shop');
    expect(schemaConfigName('blog', 'abcdef0123456789')).toBe('fleet-schema-blog-abcdef012345');
  });

  it('are valid and distinct for any two ids the validator accepts', () => {
    const id = fc.stringMatching(ID);
    fc.assert(fc.property(id, id, (a, b) => {
      expect(swarmServiceNameOk(serviceName(a))).toBe(true);
      expect(swarmConfigNameOk(schemaConfigName(a, DIGEST))).toBe(true);
      if (a !== b) {
        expect(serviceName(a)).not.toBe(serviceName(b));
        expect(schemaConfigName(a, DIGEST)).not.toBe(schemaConfigName(b, DIGEST));
      }
    }), { numRuns: 2000 });
    // The pairs a hash suffix could confuse: an id ending in _ and its neighbours.
    const near = ['blog', 'blog_', 'blog__', 'blog_1', 'blog1'];
    expect(new Set(near.map(serviceName)).size).toBe(near.length);
  });

  it('keep distinct schema contents apart for the longest ids', () => {
    const id = `a${'b'.repeat(39)}`;
    expect(schemaConfigName(id, `1${'0'.repeat(63)}`)).not.toBe(schemaConfigName(id, `2${'0'.repeat(63)}`));
  });
});
