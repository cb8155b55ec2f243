// apps/plot.ts: error bars span y ± e and widen the y range to hold them; dodge shifts series sideways.
import assert from "node:assert/strict";
import { lineChart } from "../../apps/plot.ts";

const opts = { title: "t", xLabel: "x", yLabel: "y", logX: true };
const bars = (svg: string) =>
  [...svg.matchAll(/<line x1="([\d.]+)" x2="\1" y1="([\d.]+)" y2="([\d.]+)" stroke="#[0-9a-f]+"\/>/g)]
    .map((m) => ({ x: +m[1], y1: +m[2], y2: +m[3] }));

Deno.test("lineChart: an error bar per point with a positive error, inside the plot area", () => {
  const svg = lineChart([{ name: "a", points: [[2, 50], [8, 60], [32, 70]], errors: [5, 0, 10] }], opts);
  const b = bars(svg);
  assert.equal(b.length, 2); // the zero error draws none
  // y + e of the last point is the top of the range (5% padding above it), y − e of the first the bottom.
  for (const { y1, y2 } of b) assert.ok(y1 > y2 && y2 >= 40 && y1 <= 420 - 52, `${y1} ${y2}`);
  const without = lineChart([{ name: "a", points: [[2, 50], [8, 60], [32, 70]] }], opts);
  assert.equal(bars(without).length, 0);
  assert.notEqual(svg, without);
});

Deno.test("lineChart: dodge shifts each series by its offset from the middle, not the axis ticks", () => {
  const series = [
    { name: "a", points: [[2, 1], [8, 2]] as [number, number][], errors: [0.5, 0.5] },
    { name: "b", points: [[2, 1], [8, 2]] as [number, number][], errors: [0.5, 0.5] },
  ];
  const plain = bars(lineChart(series, opts)), dodged = bars(lineChart(series, { ...opts, dodge: 4 }));
  assert.deepEqual(plain.map((b) => b.x), [plain[0].x, plain[1].x, plain[0].x, plain[1].x]);
  // Two series, dodge 4: the first moves 2 px left, the second 2 px right.
  assert.deepEqual(dodged.map((b, i) => +(b.x - plain[i].x).toFixed(1)), [-2, -2, 2, 2]);
});
