import { formatTime } from './format.js';
import { html, type Html } from './html.js';

export interface Bar {
  /** Start of the bucket (ISO-8601). */
  start: string;
  count: number;
}

const W = 640;
const H = 180;
const LEFT = 44;
const RIGHT = 8;
const TOP = 12;
const BOTTOM = 34;

/** A round number >= n for the axis (1, 2, 5 × 10^k). */
function niceMax(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 4, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

function label(iso: string, bucketSeconds: number): string {
  const t = formatTime(iso);
  // Daily buckets: the date says it all.
  return bucketSeconds >= 86400 ? t.slice(0, 10) : t.slice(5, 16);
}

/**
 * A bar chart as inline SVG, drawn on the server: no script, no external resource. The chart has
 * a text title and every bar a tooltip with its figure, and the page shows the same numbers as a
 * table, so it reads without colour and without sight.
 */
export function barChart(title: string, bars: readonly Bar[], bucketSeconds: number): Html {
  const max = niceMax(Math.max(0, ...bars.map((b) => b.count)));
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const step = bars.length === 0 ? plotW : plotW / bars.length;
  const barW = Math.max(1, step * 0.8);
  const y = (v: number): number => TOP + plotH - (v / max) * plotH;
  const total = bars.reduce((s, b) => s + b.count, 0);
  const ticks = max % 2 === 0 ? [0, max / 2, max] : [0, max];
  const labelEvery = Math.max(1, Math.ceil(bars.length / 6));
  return html`<svg
    class="chart"
    viewBox="0 0 ${W} ${H}"
    role="img"
    aria-label="${title}: ${total} in total"
    preserveAspectRatio="xMidYMid meet"
  >
    <title>${title}: ${total} in total</title>
    ${ticks.map(
      (t) =>
        html`<line
            class="grid"
            x1="${LEFT}"
            x2="${W - RIGHT}"
            y1="${y(t).toFixed(1)}"
            y2="${y(t).toFixed(1)}"
          /><text class="axis" x="${LEFT - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`,
    )}
    ${bars.map((b, i) => {
      const x = LEFT + i * step + (step - barW) / 2;
      const top = y(b.count);
      return html`<rect
        class="bar"
        x="${x.toFixed(1)}"
        y="${top.toFixed(1)}"
        width="${barW.toFixed(1)}"
        height="${(TOP + plotH - top).toFixed(1)}"
        ><title>${label(b.start, bucketSeconds)}: ${b.count}</title></rect
      >`;
    })}
    ${bars.map((b, i) =>
      i % labelEvery === 0
        ? html`<text
            class="axis"
            x="${(LEFT + i * step + step / 2).toFixed(1)}"
            y="${H - BOTTOM + 16}"
            text-anchor="middle"
            >${label(b.start, bucketSeconds)}</text
          >`
        : '',
    )}
    <line class="baseline" x1="${LEFT}" x2="${W - RIGHT}" y1="${TOP + plotH}" y2="${TOP + plotH}" />
  </svg>`;
}
