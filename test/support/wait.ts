/** Polls `check` until it returns a truthy value or the deadline passes; never a blind sleep. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { timeoutMs = 10_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  // Monotonic: a test may step or mock the wall clock.
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() > deadline) {
      const suffix = lastError ? ` (last error: ${(lastError as Error).message ?? String(lastError)})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${suffix}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Asserts that `check` stays true for the whole window, polled every `intervalMs`: how a test
 * shows that something does not happen (a healthy process not killed). Fails at the first false.
 */
export async function holdsFor(
  what: string,
  windowMs: number,
  check: () => boolean | Promise<boolean>,
  { intervalMs = 100 }: { intervalMs?: number } = {},
): Promise<void> {
  const end = performance.now() + windowMs;
  for (;;) {
    if (!(await check())) throw new Error(`${what} stopped holding ${Math.round(windowMs - (end - performance.now()))} ms into its ${windowMs} ms window`);
    if (performance.now() >= end) return;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, end - performance.now()))));
  }
}
