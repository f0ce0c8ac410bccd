/**
 * Measured figures, one grep away in CI logs. The test runner turns a test file's stdout into
 * TAP comments, so `measured: x=1` shows up as `# measured: x=1`.
 */
export function measured(name: string, value: number | string): void {
  const v = typeof value === 'number' ? (Number.isInteger(value) ? String(value) : value.toFixed(2)) : value;
  console.log(`measured: ${name}=${v}`);
}

/** Nearest-rank percentile of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}
