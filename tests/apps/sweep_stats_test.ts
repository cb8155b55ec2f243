// The numbers of a sweep (apps/sweep_stats.ts) on synthetic runs: the learning rate is chosen from the
// validation split only, cells are mean ± std over seeds at that rate, collapses say where their rate lies
// in the grid, and each claim's verdict follows from the numbers.
import assert from "node:assert/strict";
import {
  behind,
  type Cell,
  checkClaims,
  chooseLr,
  collapses,
  meanStd,
  planCell,
  runKey,
  summarize,
  type SweepRun,
  type SweepShape,
  within,
} from "../../apps/sweep_stats.ts";

const GRID = [1e-1, 1e-2, 1e-3];

function run(p: Partial<SweepRun> & Pick<SweepRun, "method" | "rank" | "lr" | "seed">): SweepRun {
  return {
    trainable: 100,
    percentOfLora: 25,
    valMetric: 50,
    valLoss: 1,
    evalMetric: 50,
    stoppedBy: "steps",
    steps: 10,
    seconds: 1,
    ...p,
  };
}

/** A complete cell with the given evaluation values over seeds. */
function cell(method: string, rank: number, values: number[], p: Partial<Cell> = {}): Cell {
  const s = meanStd(values);
  return {
    method,
    rank,
    lr: { lr: 1e-2, edge: "inside" },
    values,
    seeds: values.map((_, i) => i),
    mean: s.mean,
    std: s.std,
    n: s.n,
    trainable: 100,
    percentOfLora: method === "lora" ? 100 : 30,
    complete: true,
    ...p,
  };
}

Deno.test("meanStd: sample std (n − 1), a single value has std 0, none is NaN", () => {
  assert.deepEqual(meanStd([1, 2, 3]), { mean: 2, std: 1, n: 3 });
  assert.deepEqual(meanStd([7]), { mean: 7, std: 0, n: 1 });
  assert.ok(Number.isNaN(meanStd([]).mean));
});

Deno.test("chooseLr reads the validation split only: the evaluation metric never changes the choice", () => {
  const m = { method: "tl6", rank: 8, seed: 0 };
  // Validation prefers 1e-2; the evaluation split would prefer 1e-1 (and 1e-3).
  const runs = [
    run({ ...m, lr: 1e-1, valMetric: 60, evalMetric: 99 }),
    run({ ...m, lr: 1e-2, valMetric: 80, evalMetric: 10 }),
    run({ ...m, lr: 1e-3, valMetric: 70, evalMetric: 98 }),
  ];
  assert.deepEqual(chooseLr(runs, GRID), { lr: 1e-2, edge: "inside" });
  // Any evaluation numbers at all: the same choice.
  for (const evals of [[0, 0, 0], [100, 0, 100], [null, null, null]]) {
    const changed = runs.map((r, i) => ({ ...r, evalMetric: evals[i] }));
    assert.deepEqual(chooseLr(changed, GRID), { lr: 1e-2, edge: "inside" });
  }
});

Deno.test("chooseLr: ties by validation loss then the smaller rate; diverged runs lose; grid edges named", () => {
  const m = { method: "tl6", rank: 8, seed: 0 };
  const tie = [
    run({ ...m, lr: 1e-1, valMetric: 100, valLoss: 0.5 }),
    run({ ...m, lr: 1e-2, valMetric: 100, valLoss: 0.2 }),
    run({ ...m, lr: 1e-3, valMetric: 90, valLoss: 0.1 }),
  ];
  assert.equal(chooseLr(tie, GRID)!.lr, 1e-2);
  const exact = tie.map((r) => ({ ...r, valMetric: 100, valLoss: 0.3 }));
  assert.deepEqual(chooseLr(exact, GRID), { lr: 1e-3, edge: "smallest" });
  const nan = [
    run({ ...m, lr: 1e-1, valMetric: null, valLoss: null, stoppedBy: "nan" }),
    run({ ...m, lr: 1e-2, valMetric: 0, valLoss: 9 }),
    run({ ...m, lr: 1e-3, valMetric: null, valLoss: null, stoppedBy: "nan" }),
  ];
  assert.deepEqual(chooseLr(nan, GRID), { lr: 1e-2, edge: "inside" });
  assert.equal(chooseLr(nan.filter((r) => r.valMetric === null), GRID), null);
  assert.equal(chooseLr([run({ ...m, lr: 1e-1, valMetric: 9 })], GRID)!.edge, "largest");
});

Deno.test("summarize: the cell is the seeds at the rate chosen on validation; missing runs make it incomplete", () => {
  const shape: SweepShape = { methods: ["tl6"], ranks: [8], grid: GRID, seeds: [0, 1, 2] };
  const m = { method: "tl6", rank: 8 };
  const runs = [
    run({ ...m, lr: 1e-1, seed: 0, valMetric: 10, evalMetric: 90 }),
    run({ ...m, lr: 1e-2, seed: 0, valMetric: 70, evalMetric: 60 }),
    run({ ...m, lr: 1e-3, seed: 0, valMetric: 20, evalMetric: 95 }),
    run({ ...m, lr: 1e-2, seed: 1, evalMetric: 62 }),
    // A run at a rate not chosen (e.g. from an earlier grid) is ignored.
    run({ ...m, lr: 1e-1, seed: 1, evalMetric: 0 }),
  ];
  const [partial] = summarize(runs, shape);
  assert.equal(partial.complete, false);
  const [c] = summarize([...runs, run({ ...m, lr: 1e-2, seed: 2, evalMetric: 64 })], shape);
  assert.equal(c.complete, true);
  assert.equal(c.lr!.lr, 1e-2);
  assert.deepEqual(c.values, [60, 62, 64]);
  assert.equal(c.mean, 62);
  assert.equal(c.std, 2);
  // A seed that diverged is left out of the mean and counted.
  const [d] = summarize([...runs, run({ ...m, lr: 1e-2, seed: 2, evalMetric: null, stoppedBy: "nan" })], shape);
  assert.deepEqual([d.values, d.n, d.mean], [[60, 62, null], 2, 61]);
});

Deno.test("within / behind: holds, does not hold, or inconclusive by the interval diff ± margin", () => {
  assert.equal(within({ diff: 1, margin: 0.5 }, 2), "holds");
  assert.equal(within({ diff: 1, margin: 1.5 }, 2), "inconclusive");
  assert.equal(within({ diff: 5, margin: 1 }, 2), "does not hold");
  assert.equal(within({ diff: -10, margin: 3 }, 2), "holds"); // better than the reference
  assert.equal(behind({ diff: 10, margin: 3 }, 2), "holds");
  assert.equal(behind({ diff: 3, margin: 2 }, 2), "inconclusive");
  assert.equal(behind({ diff: 0.5, margin: 1 }, 2), "does not hold");
});

Deno.test("checkClaims: each verdict follows from the synthetic numbers", () => {
  const verdicts = (cells: Cell[]) => Object.fromEntries(checkClaims(cells, 2).map((c) => [c.claim, c.verdict]));
  const base = [
    cell("lora", 2, [90, 91, 92]),
    cell("lora", 8, [95.5, 96, 96.5]),
    cell("lora", 32, [96, 96, 96]),
    cell("tl6", 2, [94.5, 95, 95.5]),
    cell("tl6", 8, [95, 95, 95]), // LoRA − TL6 = 1 ± 0.58: within 2
    cell("tl6", 32, [94, 94, 94]),
    cell("tl5", 2, [94, 94, 94]),
    cell("tl5", 8, [90, 95, 100]), // TL6 − TL5 = 0 ± 5.8: inconclusive
    cell("tl5", 32, [50, 50, 50]),
    cell("tl3", 2, [94, 94, 94]),
    cell("tl3", 8, [90, 90, 90]),
    cell("tl3", 32, [60, 61, 62]),
    cell("tl4", 2, [94, 94, 94]),
    cell("tl4", 32, [94, 94, 94]), // not behind at the largest rank
    cell("vera", 2, [10, 10, 10]),
    cell("vera", 8, [20, 20, 20]),
    cell("vera", 32, [30, 30, 30]),
  ];
  const v = verdicts(base);
  const pick = (prefix: string) => Object.entries(v).find(([k]) => k.startsWith(prefix))![1];
  assert.equal(pick("TL6 is within 2 points of LoRA at r=8"), "holds");
  assert.equal(pick("TL5 is close behind TL6"), "inconclusive");
  assert.equal(pick("TL3 falls behind"), "holds");
  assert.equal(pick("TL4 falls behind"), "does not hold");
  assert.equal(pick("VERA falls behind"), "holds");
  assert.equal(pick("TL6 is stable"), "holds");
  assert.equal(pick("TL5 degrades"), "holds");

  // TL6 far below LoRA at r=8; TL6 unstable across ranks.
  const worse = base.map((c) => c.method === "tl6" && c.rank === 8 ? cell("tl6", 8, [80, 81, 82]) : c);
  const w = verdicts(worse);
  assert.equal(Object.entries(w).find(([k]) => k.startsWith("TL6 is within"))![1], "does not hold");
  assert.equal(Object.entries(w).find(([k]) => k.startsWith("TL6 is stable"))![1], "does not hold");
  // The evidence states the numbers and P%.
  const claim = checkClaims(worse, 2).find((c) => c.claim.startsWith("TL6 is within"))!;
  assert.match(claim.evidence[0], /LoRA − TL6 at r=8: \+15\.00 ± 1\.29 .*TL6 trains 30\.00% of LoRA's parameters/);

  // Cells a claim needs are missing: not tested, saying what is needed.
  const none = checkClaims([cell("lora", 2, [1, 2, 3])], 2);
  assert.ok(none.every((c) => c.verdict === "not tested"), JSON.stringify(none));
  assert.match(none[0].evidence[0], /needs tl6 and lora at r=8/);
});

Deno.test("collapses: under half the best at its rank, with where its rate lies in the grid", () => {
  const cells = [
    cell("lora", 32, [100, 100, 100]),
    cell("tl6", 32, [10, 12, 14], { lr: { lr: 1e-3, edge: "smallest" } }),
    cell("vera", 32, [5, 5, 5], { lr: { lr: 1e-1, edge: "largest" } }),
    cell("tl5", 32, [20, 20, 20]),
    cell("tl3", 32, [60, 60, 60]),
  ];
  const c = collapses(cells);
  assert.deepEqual(c.map((x) => x.cell.method), ["tl6", "vera", "tl5"]);
  assert.match(c[0].note, /persists at the smallest learning rate of the grid \(0\.001\)/);
  assert.match(c[1].note, /largest of the grid \(0\.1\): a larger one was not tried/);
  assert.match(c[2].note, /inside the grid: not for want of another rate/);
});

Deno.test("planCell: a seed-0 favourite that is unstable across seeds gives way to the next rate (validation only)", () => {
  const shape: SweepShape = { methods: ["tl6"], ranks: [8], grid: GRID, seeds: [0, 1, 2] };
  const m = { method: "tl6", rank: 8 };
  const byKey = (rs: SweepRun[]) => new Map(rs.map((r) => [runKey(r), r]));
  const sel = [
    run({ ...m, lr: 1e-1, seed: 0, valMetric: 100, valLoss: 0.1 }),
    run({ ...m, lr: 1e-2, seed: 0, valMetric: 99, valLoss: 0.1 }),
    run({ ...m, lr: 1e-3, seed: 0, valMetric: 60, valLoss: 0.5 }),
  ];
  // The grid first, at seed 0.
  assert.deepEqual(planCell(byKey(sel.slice(0, 1)), "tl6", 8, shape).need.map((k) => k.lr), [1e-2, 1e-3]);
  // Then the favourite's other seeds.
  let p = planCell(byKey(sel), "tl6", 8, shape);
  assert.deepEqual(p.need.map((k) => [k.lr, k.seed]), [[1e-1, 1], [1e-1, 2]]);
  // Unstable: its mean over seeds (100 + 10 + 0) / 3 = 36.67 < 99, so 1e-2 is tried with every seed.
  const unstable = [
    run({ ...m, lr: 1e-1, seed: 1, valMetric: 10, evalMetric: 90 }),
    run({ ...m, lr: 1e-1, seed: 2, valMetric: null, valLoss: null, evalMetric: null, stoppedBy: "nan" }),
  ];
  p = planCell(byKey([...sel, ...unstable]), "tl6", 8, shape);
  assert.equal(p.tried[0].meanVal, -Infinity); // a diverged seed sinks the mean
  assert.deepEqual(p.need.map((k) => [k.lr, k.seed]), [[1e-2, 1], [1e-2, 2]]);
  const stable = [
    run({ ...m, lr: 1e-2, seed: 1, valMetric: 98, evalMetric: 1 }),
    run({ ...m, lr: 1e-2, seed: 2, valMetric: 97, evalMetric: 2 }),
  ];
  p = planCell(byKey([...sel, ...unstable, ...stable]), "tl6", 8, shape);
  // 1e-3's seed-0 score (60) cannot beat 1e-2's mean (98): not tried; 1e-2 chosen.
  assert.deepEqual(p.need, []);
  assert.deepEqual(p.choice, { lr: 1e-2, edge: "inside" });
  assert.deepEqual(p.tried.map((c) => c.lr), [1e-1, 1e-2]);
  const [c] = summarize([...sel, ...unstable, ...stable], shape);
  assert.deepEqual(c.values, [50, 1, 2]); // seed 0: the default evaluation score of run()
  // A stable favourite needs no more than its seeds.
  const calm = [
    run({ ...m, lr: 1e-1, seed: 1, valMetric: 99 }),
    run({ ...m, lr: 1e-1, seed: 2, valMetric: 100 }),
  ];
  p = planCell(byKey([...sel, ...calm]), "tl6", 8, shape);
  assert.deepEqual([p.need, p.choice, p.tried.length], [[], { lr: 1e-1, edge: "largest" }, 1]);
});
