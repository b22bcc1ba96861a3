/**
 * Pictures drawn as SVG and HTML from numbers (no library, no inline style): a column
 * chart with a table of the same numbers for screen readers, horizontal bars, and a
 * usage meter.
 */
import { h, svg } from './dom.js';

export interface Point {
  readonly label: string;
  readonly value: number;
}

/** Columns, one per point; the same numbers as a table under a disclosure. */
export function columnChart(title: string, points: readonly Point[], valueName: string): HTMLElement {
  const width = 720;
  const height = 200;
  const top = 16;
  const bottom = 24;
  const max = Math.max(1, ...points.map((point) => point.value));
  const slot = width / Math.max(1, points.length);
  const total = points.reduce((sum, point) => sum + point.value, 0);
  const bars = points.map((point, index) => {
    const barHeight = ((height - top - bottom) * point.value) / max;
    return svg('g', {},
      svg('rect', { x: index * slot + 2, y: height - bottom - barHeight, width: Math.max(1, slot - 4), height: barHeight, class: 'bar' },
        svg('title', {}, `${point.label}: ${point.value} ${valueName}`)),
      index % 3 === 0 ? svg('text', { x: index * slot + slot / 2, y: height - 6, 'text-anchor': 'middle', class: 'axis' }, point.label) : null,
    );
  });
  const picture = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${title}: ${total} ${valueName} in all, at most ${max} in one hour`, class: 'chart' },
    svg('line', { x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: 'baseline' }),
    svg('text', { x: 4, y: 12, class: 'axis' }, `max ${max}`),
    bars,
  );
  return h('figure', { class: 'chart-figure' },
    h('figcaption', {}, `${title} (${total} in all)`),
    picture,
    h('details', {}, h('summary', {}, 'Show as a table'),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Hour (UTC)'), h('th', { scope: 'col' }, valueName))),
        h('tbody', {}, points.map((point) => h('tr', {}, h('td', {}, point.label), h('td', {}, String(point.value))))))),
  );
}

/** Labelled horizontal bars, longest first. */
export function barList(title: string, points: readonly Point[], empty: string): HTMLElement {
  if (points.length === 0) return h('figure', { class: 'bars' }, h('figcaption', {}, title), h('p', { class: 'empty' }, empty));
  const max = Math.max(1, ...points.map((point) => point.value));
  return h('figure', { class: 'bars' },
    h('figcaption', {}, title),
    h('ul', {}, points.map((point) => {
      const bar = h('span', { class: 'bar-fill', 'aria-hidden': 'true' });
      bar.style.width = `${Math.max(2, (100 * point.value) / max)}%`;
      return h('li', {}, h('span', { class: 'bar-label' }, point.label), h('span', { class: 'bar-track' }, bar), h('span', { class: 'bar-value' }, String(point.value)));
    })),
  );
}

/** How much of a limit is used: a native <meter>, with the numbers in words beside it. */
export function usageMeter(label: string, used: number, limit: number | null): HTMLElement {
  if (limit === null) return h('p', { class: 'usage' }, `${label}: ${used.toLocaleString('en-US')} (no limit)`);
  const meter = h('meter', { min: 0, max: limit, value: Math.min(used, limit), low: limit * 0.75, high: limit * 0.9, optimum: 0, 'aria-label': label });
  const percent = Math.round((100 * used) / Math.max(1, limit));
  return h('div', { class: 'usage' },
    h('p', {}, `${label}: ${used.toLocaleString('en-US')} of ${limit.toLocaleString('en-US')} (${percent} %)`),
    meter,
  );
}
