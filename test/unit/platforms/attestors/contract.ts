/**
 * The one contract every attestor passes (docs: src/platforms/attestor.ts). Each attestor's test
 * file calls {@link attestorContract} with a harness that knows how to make valid, forged,
 * expired and replayed evidence for that platform; cases a platform cannot have (an ECS task has
 * no signature to forge) are left out of the harness and reported as skipped, never faked.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManualClock } from '../../../../src/core/clock.js';
import { isAttributeKey } from '../../../../src/identity/attributes.js';
import type { AttestContext, AttestationResult, AttestedNode, Attestor } from '../../../../src/platforms/attestor.js';
import { PlatformError } from '../../../../src/platforms/errors.js';
import { BUILTIN_ATTESTORS } from '../../../../src/platforms/registry.js';
import { MemoryAttestationState } from '../../../../src/platforms/state.js';

export const TRUST_DOMAIN = 'example.org';
export const START = '2026-03-01T12:00:00Z';

export interface ContractFixture {
  readonly attestor: Attestor;
  /** The node a workload/hint attestor is bound to (absent for node attestors). */
  readonly node?: AttestedNode;
  /** Fresh valid evidence (for one-time attestors each call makes a new subject). */
  valid(ctx: AttestContext): Promise<unknown>;
  /** Evidence whose signature/token does not verify. */
  forged?(ctx: AttestContext): Promise<unknown>;
  /** Evidence that verified once but is outside its validity window at ctx.clock. */
  expired?(ctx: AttestContext, clock: ManualClock): Promise<unknown>;
  /** True when the same evidence must not attest twice. */
  readonly oneTime: boolean;
  /** True when each `valid()` call describes a new subject (default: `oneTime`). */
  readonly freshSubjectEachCall?: boolean;
  /** Valid-looking evidence while the platform API is down (fail closed). */
  upstreamDown?(ctx: AttestContext): Promise<unknown>;
  /** The same attestor wired to a platform API that is down, when `attestor` cannot be. */
  readonly downAttestor?: Attestor;
  /** Evidence that contradicts the verified facts. */
  mismatch?(ctx: AttestContext): Promise<unknown>;
  /** Selectors a valid attestation must include. */
  readonly expectSelectors: readonly string[];
  /** Attributes (key -> value) a valid attestation must include. */
  readonly expectAttributes: Readonly<Record<string, unknown>>;
  close(): Promise<void>;
}

export function newContext(clock: ManualClock, node?: AttestedNode): AttestContext {
  return { clock, trustDomain: TRUST_DOMAIN, state: new MemoryAttestationState(), ...(node ? { node } : {}) };
}

/** Asserts `promise` rejects with a PlatformError of exactly `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<PlatformError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `expected ${code}, but attestation succeeded`);
  assert.ok(caught instanceof PlatformError, `expected PlatformError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  return caught;
}

function assertWellFormed(result: AttestationResult, attestor: Attestor, clock: ManualClock): void {
  assert.ok(Object.isFrozen(result) && Object.isFrozen(result.selectors) && Object.isFrozen(result.attributes));
  assert.equal(result.attestor, attestor.name);
  assert.match(result.agentId, new RegExp(`^spiffe://${TRUST_DOMAIN.replace('.', '\\.')}/ward/agent/[a-z0-9_]+(/[A-Za-z0-9._-]+)+$`));
  assert.ok(result.agentId.length <= 2048);
  assert.ok(result.selectors.length > 0, 'a success yields at least one selector');
  assert.deepEqual([...result.selectors], [...new Set(result.selectors)].sort(), 'selectors are sorted and unique');
  for (const s of result.selectors) assert.match(s, new RegExp(`^${attestor.name}:[a-z][a-z0-9_-]*:.+$`, 's'), `selector ${s}`);
  for (const [key, attr] of Object.entries(result.attributes)) {
    assert.ok(isAttributeKey(key), `attribute key ${key}`);
    assert.equal(attr.source, `attestor:${attestor.name}`);
    assert.equal(attr.observedAt, clock.now());
  }
}

/** Registers the shared contract tests for one attestor. */
export function attestorContract(name: string, makeFixture: () => Promise<ContractFixture>): void {
  describe(`attestor contract: ${name}`, () => {
    let fx: ContractFixture;
    let clock: ManualClock;
    const ctx = (): AttestContext => newContext(clock, fx.node);
    before(async () => {
      fx = await makeFixture();
    });
    after(async () => {
      await fx.close();
    });

    test('is a registered built-in of the declared kind', () => {
      clock = new ManualClock(START);
      const plugin = BUILTIN_ATTESTORS[fx.attestor.name];
      assert.ok(plugin, `${fx.attestor.name} is in the registry`);
      assert.equal(plugin.kind, fx.attestor.kind);
      assert.equal(fx.attestor.name, name);
    });

    test('valid evidence yields a frozen, well-formed result with the expected facts', async () => {
      clock = new ManualClock(START);
      const c = ctx();
      const result = await fx.attestor.attest(await fx.valid(c), c);
      assertWellFormed(result, fx.attestor, clock);
      for (const s of fx.expectSelectors) assert.ok(result.selectors.includes(s), `missing selector ${s} in ${result.selectors.join(', ')}`);
      for (const [k, v] of Object.entries(fx.expectAttributes)) assert.deepEqual(result.attributes[k]?.value, v, `attribute ${k}`);
      if (fx.node) assert.equal(result.agentId, fx.node.agentId, 'workload attestors return the bound node agent id');
    });

    test('the same subject gets the same agent id and selectors', async () => {
      clock = new ManualClock(START);
      const c1 = ctx();
      const r1 = await fx.attestor.attest(await fx.valid(c1), c1);
      const c2 = ctx();
      const r2 = await fx.attestor.attest(await fx.valid(c2), c2);
      if (!(fx.freshSubjectEachCall ?? fx.oneTime)) {
        assert.equal(r1.agentId, r2.agentId);
        assert.deepEqual(r1.selectors, r2.selectors);
      } else {
        assert.notEqual(r1.agentId, r2.agentId, 'fixtures that make a new subject per call get a new agent id');
      }
    });

    test('one-time evidence attests once; the replay is ERR_ATTEST_REPLAYED', { skip: false }, async (t) => {
      clock = new ManualClock(START);
      const c = ctx();
      const evidence = await fx.valid(c);
      await fx.attestor.attest(evidence, c);
      if (!fx.oneTime) {
        // Reusable evidence (a projected token, task metadata) attests again with the same result.
        const again = await fx.attestor.attest(evidence, c);
        assert.equal(again.attestor, fx.attestor.name);
        t.diagnostic('reusable evidence: replay is allowed by design');
        return;
      }
      await rejectsWith(fx.attestor.attest(evidence, c), 'ERR_ATTEST_REPLAYED');
      await rejectsWith(fx.attestor.attest(structuredClone(evidence), c), 'ERR_ATTEST_REPLAYED');
    });

    test('forged evidence is ERR_ATTEST_FORGED', async (t) => {
      if (!fx.forged) return t.skip('nothing signed to forge on this platform');
      clock = new ManualClock(START);
      const c = ctx();
      await rejectsWith(fx.attestor.attest(await fx.forged(c), c), 'ERR_ATTEST_FORGED');
    });

    test('expired evidence is ERR_ATTEST_EXPIRED', async (t) => {
      if (!fx.expired) return t.skip('evidence has no lifetime on this platform');
      clock = new ManualClock(START);
      const c = ctx();
      await rejectsWith(fx.attestor.attest(await fx.expired(c, clock), c), 'ERR_ATTEST_EXPIRED');
    });

    test('evidence contradicting verified facts is ERR_ATTEST_MISMATCH', async (t) => {
      if (!fx.mismatch) return t.skip('no second source of truth to contradict');
      clock = new ManualClock(START);
      const c = ctx();
      await rejectsWith(fx.attestor.attest(await fx.mismatch(c), c), 'ERR_ATTEST_MISMATCH');
    });

    test('a platform API that is down fails closed with ERR_ATTEST_UPSTREAM', async (t) => {
      if (!fx.upstreamDown) return t.skip('no platform API on the verification path');
      clock = new ManualClock(START);
      const c = ctx();
      await rejectsWith((fx.downAttestor ?? fx.attestor).attest(await fx.upstreamDown(c), c), 'ERR_ATTEST_UPSTREAM');
    });

    test('workload and hint attestors refuse evidence without a bound node', async (t) => {
      if (fx.attestor.kind === 'node') return t.skip('node attestors are the binding');
      clock = new ManualClock(START);
      const bound = ctx();
      const evidence = await fx.valid(bound);
      await rejectsWith(fx.attestor.attest(evidence, newContext(clock)), 'ERR_ATTEST_NOT_BOUND');
      const wrongNode: AttestedNode = { attestor: 'not_a_proof', agentId: `spiffe://${TRUST_DOMAIN}/ward/agent/x/y`, selectors: [], attributes: {} };
      await rejectsWith(fx.attestor.attest(evidence, newContext(clock, wrongNode)), 'ERR_ATTEST_NOT_BOUND');
    });

    test('malformed evidence is ERR_ATTEST_MALFORMED', async () => {
      clock = new ManualClock(START);
      for (const bad of [null, undefined, 42, 'evidence', [], true, {}, { token: 1 }, Object.create({ polluted: true }) as unknown]) {
        await rejectsWith(fx.attestor.attest(bad, ctx()), 'ERR_ATTEST_MALFORMED');
      }
    });

    test('fuzz: arbitrary evidence never succeeds and only fails with ERR_ATTEST_* codes', async () => {
      clock = new ManualClock(START);
      await fc.assert(
        fc.asyncProperty(fc.anything({ maxDepth: 3, withObjectString: true }), async (value) => {
          try {
            await fx.attestor.attest(value, ctx());
            return false;
          } catch (error) {
            return error instanceof PlatformError && error.code.startsWith('ERR_ATTEST_');
          }
        }),
        { numRuns: 150 },
      );
    });

    test('fuzz: mutated valid evidence fails only with ERR_ATTEST_* codes', async () => {
      clock = new ManualClock(START);
      const c0 = ctx();
      const base = (await fx.valid(c0)) as Record<string, unknown>;
      if (base === null || typeof base !== 'object') return;
      const keys = Object.keys(base);
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...keys), fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.constant(null), fc.constant(undefined), fc.object({ maxDepth: 1 })), async (key, value) => {
          const c = ctx();
          const mutated = { ...(await fx.valid(c)) as Record<string, unknown>, [key]: value };
          try {
            await fx.attestor.attest(mutated, c);
            return true; // a mutation that still verifies (e.g. a field the attestor ignores) is fine
          } catch (error) {
            return error instanceof PlatformError && error.code.startsWith('ERR_ATTEST_');
          }
        }),
        { numRuns: 40 },
      );
    });
  });
}
