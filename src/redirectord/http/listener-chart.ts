import { escapeHtml as h } from './escape.js';
import { MINUTE_MS } from '../../coordination/listener-history.js';

/**
 * One listeners-over-time chart as inline SVG: no script, no font, no external resource, so
 * the status page keeps its strict CSP. Pure. Minutes without a sample break the line.
 */
const WIDTH = 720;
const HEIGHT = 120;

function pathOf(samples: readonly (number | null)[], max: number, slots: number): string {
  const parts: string[] = [];
  let pen = false;
  samples.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    const x = ((slots - samples.length + i) / Math.max(1, slots - 1)) * WIDTH;
    const y = HEIGHT - (v / max) * HEIGHT;
    parts.push(`${pen ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`);
    pen = true;
  });
  return parts.join('');
}

export function listenerChart(label: string, samples: readonly (number | null)[], end: number, slots: number): string {
  const known = samples.filter((v): v is number => v !== null);
  const max = Math.max(1, ...known);
  const last = known.length > 0 ? known[known.length - 1]! : 0;
  const start = new Date(end - (slots - 1) * MINUTE_MS).toISOString().slice(11, 16);
  const stop = new Date(end).toISOString().slice(11, 16);
  return (
    `<figure class="chart" data-chart="${h(label)}"><figcaption>${h(label)}: ${h(last)} now, peak ${h(Math.max(0, ...known))}</figcaption>` +
    `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" width="100%" height="${HEIGHT}" preserveAspectRatio="none" role="img" aria-label="${h(label)} listeners, last 24 hours">` +
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff" stroke="#ddd"/>` +
    `<path d="${pathOf(samples, max, slots)}" fill="none" stroke="#1565c0" stroke-width="1.5" vector-effect="non-scaling-stroke"/></svg>` +
    `<div class="muted">${h(start)}–${h(stop)} UTC · max ${h(max)}</div></figure>`
  );
}
