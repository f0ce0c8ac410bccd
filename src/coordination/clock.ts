/**
 * Milliseconds on a clock that only moves forward at a steady rate, from an arbitrary origin.
 *
 * Every duration and deadline the fencing logic measures uses this, never Date.now(): the wall
 * clock can be stepped (NTP, an operator, a VM resume), and a step back of 10 s on a cut-off
 * master would keep its confirmation window open for 10 s more, long after another node won.
 */
export type MonotonicClock = () => number;

export const monotonicNow: MonotonicClock = () => performance.now();
