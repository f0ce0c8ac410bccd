import type { TestContext } from 'node:test';

export type Step = (name: string, fn: (st: TestContext) => Promise<void>) => Promise<void>;

/**
 * The subtests of one scenario, each needing the ones before it: after a failure the rest are
 * skipped, not left to time out. Each step's duration goes to the parent's diagnostics.
 */
export function sequentialSteps(t: TestContext): Step {
  let failed = false;
  return async (name, fn) => {
    await t.test(name, { skip: failed ? 'an earlier step failed' : false }, async (st) => {
      const since = Date.now();
      try {
        await fn(st);
      } catch (err) {
        failed = true;
        throw err;
      } finally {
        t.diagnostic(`${name}: ${((Date.now() - since) / 1000).toFixed(1)} s`);
      }
    });
  };
}
