/** Listener helpers for tests that check audio arrives. */

/** Reads a stream until `bytes` arrived; resolves the count (0 on an error status). */
export async function listen(url: string, bytes: number, timeoutMs: number, headers: Record<string, string> = {}): Promise<number> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  let got = 0;
  try {
    const res = await fetch(url, { signal: ctrl.signal, headers });
    if (res.status !== 200 || !res.body) return 0;
    for await (const chunk of res.body) {
      got += (chunk as Uint8Array).length;
      if (got >= bytes) break;
    }
    return got;
  } catch {
    return got;
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
}
