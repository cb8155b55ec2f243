/**
 * Minimal SVG line charts (no dependencies): training curves and
 * metric-vs-rank plots that a person can open in any browser.
 * @module
 */

/** One line of a chart. */
export interface Series {
  /** Legend name. */
  name: string;
  /** (x, y) points, in x order. */
  points: readonly (readonly [number, number])[];
  /** Draw markers instead of a line (e.g. sparse validation points). */
  markers?: boolean;
  /** Error bars: ± this half-width at each point (same order as `points`; e.g. a std over seeds). */
  errors?: readonly number[];
}

/** Options of {@link lineChart}. */
export interface ChartOptions {
  /** Chart title. */
  title: string;
  /** Label of the x axis. */
  xLabel: string;
  /** Label of the y axis. */
  yLabel: string;
  /** Width in pixels (default 640). */
  width?: number;
  /** Height in pixels (default 360). */
  height?: number;
  /** Use a log scale on x (e.g. for ranks 2, 8, 32). */
  logX?: boolean;
  /** Shift each series sideways by this many pixels times its offset from the middle, so error bars at one x do not overlap (default 0). */
  dodge?: number;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(+v.toPrecision(12));
  return out;
}

/** An SVG document with one line (or marker set) per series, axes, ticks and a legend. */
export function lineChart(series: readonly Series[], opts: ChartOptions): string {
  const W = opts.width ?? 720, H = opts.height ?? 420;
  const m = { l: 64, r: 160, t: 40, b: 52 };
  // Error bars widen the y range: each point counts with its bar's ends.
  const pts = series.flatMap((s) =>
    s.points.flatMap(([x, y], i) => {
      const e = s.errors?.[i];
      return e !== undefined && Number.isFinite(e) && e > 0 ? [[x, y - e], [x, y + e]] as const : [[x, y]] as const;
    })
  ).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const fx = (x: number) => (opts.logX ? Math.log2(x) : x);
  let [x0, x1] = [Math.min(...pts.map((p) => fx(p[0]))), Math.max(...pts.map((p) => fx(p[0])))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (!pts.length) [x0, x1, y0, y1] = [0, 1, 0, 1];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const sxAxis = (x: number) => m.l + ((fx(x) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - m.r / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`,
  ];
  const yTicks = niceTicks(y0, y1);
  const xTicks = opts.logX ? [...new Set(pts.map((p) => p[0]))].sort((a, b) => a - b) : niceTicks(x0, x1);
  for (const t of yTicks) {
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${+t.toPrecision(4)}</text>`);
  }
  for (const t of xTicks) {
    out.push(`<text x="${sxAxis(t)}" y="${H - m.b + 18}" text-anchor="middle">${+t.toPrecision(4)}</text>`);
  }
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="black"/>`);
  out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="black"/>`);
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  out.push(
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${
      esc(opts.yLabel)
    }</text>`,
  );
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const shift = (opts.dodge ?? 0) * (i - (series.length - 1) / 2);
    const sx = (x: number) => sxAxis(x) + shift;
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (s.markers) { for (const [x, y] of p) out.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3.5" fill="${c}"/>`); }
    s.points.forEach(([x, y], j) => {
      const e = s.errors?.[j];
      if (e === undefined || !(e > 0) || !Number.isFinite(x) || !Number.isFinite(y)) return;
      const [X, lo, hi] = [sx(x).toFixed(1), sy(y - e).toFixed(1), sy(y + e).toFixed(1)];
      const cap = (yy: string) => `<line x1="${+X - 4}" x2="${+X + 4}" y1="${yy}" y2="${yy}" stroke="${c}"/>`;
      out.push(`<line x1="${X}" x2="${X}" y1="${lo}" y2="${hi}" stroke="${c}"/>`, cap(lo), cap(hi));
    });
    if (!s.markers || p.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${c}" stroke-width="${s.markers ? 1 : 1.6}" ${
          s.markers ? 'stroke-dasharray="4 3" ' : ""
        }points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}"/>`,
      );
    }
    const ly = m.t + 10 + i * 18;
    out.push(`<line x1="${W - m.r + 12}" x2="${W - m.r + 32}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    out.push(`<text x="${W - m.r + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** Exponential moving average of a curve, for readable training-loss plots. */
export function smooth(points: readonly (readonly [number, number])[], alpha = 0.1): [number, number][] {
  let acc = NaN;
  return points.map(([x, y]) => {
    acc = Number.isNaN(acc) ? y : acc + alpha * (y - acc);
    return [x, acc];
  });
}
