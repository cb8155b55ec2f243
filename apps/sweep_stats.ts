/**
 * The numbers of a sweep (apps/sweep.ts), from its recorded runs alone: the
 * learning rate of each cell (method × rank) chosen on the validation split
 * ({@link planCell}, which also says which runs a cell still needs),
 * the mean ± std of the evaluation metric over seeds at that rate, and the
 * paper's claims checked against them with a verdict. Pure functions over
 * plain records, so the report is the same whether a sweep ran in one go or
 * was resumed, and the verdict logic is testable on synthetic numbers.
 * @module
 */

/** One training run of a sweep, as recorded (one JSONL line): its settings and its result. */
export interface SweepRun {
  /** Method name (a preset, or a user module's name). */
  method: string;
  /** Adapter rank. */
  rank: number;
  /** Peak learning rate. */
  lr: number;
  /** Seed of the initialisation and the data order. */
  seed: number;
  /** Trainable parameters. */
  trainable: number;
  /** Trainable parameters as a percentage of LoRA's at the same rank on the same model. */
  percentOfLora: number;
  /** Task metric on the validation split (null when training diverged). */
  valMetric: number | null;
  /** Mean loss on the validation split (null when training diverged). */
  valLoss: number | null;
  /** Task metric on the evaluation split (null when training diverged). */
  evalMetric: number | null;
  /** Why training stopped ("steps", or "nan" when the loss or parameters became non-finite). */
  stoppedBy: string;
  /** Steps completed. */
  steps: number;
  /** Training seconds (excluded from the report, which must not depend on timing). */
  seconds: number;
}

/** What identifies a run. */
export type RunId = Pick<SweepRun, "method" | "rank" | "lr" | "seed">;

/** The key of a run: runs with equal keys are the same run. */
export function runKey(r: Pick<SweepRun, "method" | "rank" | "lr" | "seed">): string {
  return `${r.method}|${r.rank}|${r.lr}|${r.seed}`;
}

/** Mean and sample standard deviation (n − 1; 0 for a single value). */
export function meanStd(xs: readonly number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  if (!n) return { mean: NaN, std: NaN, n: 0 };
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const v = n > 1 ? xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(v), n };
}

/** The learning rate chosen for a cell, and the run it was chosen from. */
export interface LrChoice {
  /** The chosen rate. */
  lr: number;
  /** Where it lies in the grid: its smallest rate, its largest, or inside. */
  edge: "smallest" | "largest" | "inside";
}

/** Seed-0 order of a cell's selection runs, best first: validation metric, then loss, then the smaller rate. */
export function rankSelection(runs: readonly SweepRun[]): SweepRun[] {
  const ok = runs.filter((r) => r.valMetric !== null && Number.isFinite(r.valMetric));
  return ok.sort((a, b) =>
    (b.valMetric! - a.valMetric!) || ((a.valLoss ?? Infinity) - (b.valLoss ?? Infinity)) || (a.lr - b.lr)
  );
}

/** Where `lr` lies in `grid`. */
export function gridEdge(lr: number, grid: readonly number[]): LrChoice["edge"] {
  if (grid.length < 2) return "inside";
  return lr === Math.min(...grid) ? "smallest" : lr === Math.max(...grid) ? "largest" : "inside";
}

/**
 * The best learning rate of a cell's selection runs (one per grid rate, at
 * the selection seed): the highest validation metric, ties broken by the lower
 * validation loss, then by the smaller rate. Only `valMetric` and `valLoss`
 * are read — never the evaluation split. Diverged runs (null) lose to any
 * finished run. Null when every run diverged. ({@link planCell} starts from
 * this rate and confirms it on every seed.)
 */
export function chooseLr(runs: readonly SweepRun[], grid: readonly number[]): LrChoice | null {
  const best = rankSelection(runs)[0];
  return best ? { lr: best.lr, edge: gridEdge(best.lr, grid) } : null;
}

/** A learning rate tried with every seed: its validation metric and loss averaged over the seeds. */
export interface Candidate {
  /** The rate. */
  lr: number;
  /** Its validation metric at the selection seed. */
  seed0: number;
  /** Mean validation metric over every seed (−Infinity when a seed diverged). */
  meanVal: number;
  /** Mean validation loss over every seed (Infinity when a seed diverged). */
  meanLoss: number;
}

/** What a cell needs next, or its decision. */
export interface CellPlan {
  /** Runs still to train before the cell can be decided (empty once decided). */
  need: RunId[];
  /** The chosen rate once decided (null when every selection run diverged). */
  choice: LrChoice | null;
  /** The rates tried with every seed, in the order they were tried. */
  tried: Candidate[];
}

/**
 * Decides a cell's learning rate from the validation split only, racing the
 * grid: every rate is tried at the selection seed; then, in that seed's order,
 * a rate is tried with every seed while its selection-seed score beats the
 * best mean over seeds so far. The rate with the best mean validation metric
 * (ties: lower mean validation loss, then the smaller rate) is chosen. Usually
 * that is the selection seed's favourite, at no extra cost; a favourite that
 * is unstable across seeds (near the edge of divergence) loses to the next
 * rate. `need` lists the runs to train before the next step of the decision.
 */
export function planCell(
  byKey: ReadonlyMap<string, SweepRun>,
  method: string,
  rank: number,
  shape: SweepShape,
): CellPlan {
  const selection = shape.grid.map((lr) => ({ method, rank, lr, seed: shape.seeds[0] }));
  const missing = selection.filter((k) => !byKey.has(runKey(k)));
  if (missing.length) return { need: missing, choice: null, tried: [] };
  const order = rankSelection(selection.map((k) => byKey.get(runKey(k))!));
  const tried: Candidate[] = [];
  let best: Candidate | null = null;
  for (const c of order) {
    if (best && !(c.valMetric! > best.meanVal)) break;
    const seeds = shape.seeds.map((seed) => ({ method, rank, lr: c.lr, seed }));
    const need = seeds.filter((k) => !byKey.has(runKey(k)));
    if (need.length) return { need, choice: null, tried };
    const rs = seeds.map((k) => byKey.get(runKey(k))!);
    const fin = (x: number | null, bad: number) => (x === null || !Number.isFinite(x) ? bad : x);
    const cand: Candidate = {
      lr: c.lr,
      seed0: c.valMetric!,
      meanVal: rs.reduce((a, r) => a + fin(r.valMetric, -Infinity), 0) / rs.length,
      meanLoss: rs.reduce((a, r) => a + fin(r.valLoss, Infinity), 0) / rs.length,
    };
    tried.push(cand);
    if (
      !best || cand.meanVal > best.meanVal ||
      (cand.meanVal === best.meanVal && (cand.meanLoss < best.meanLoss ||
        (cand.meanLoss === best.meanLoss && cand.lr < best.lr)))
    ) best = cand;
  }
  return { need: [], choice: best ? { lr: best.lr, edge: gridEdge(best.lr, shape.grid) } : null, tried };
}

/** One cell of the table: a method at a rank, at its chosen learning rate, over seeds. */
export interface Cell {
  /** Method. */
  method: string;
  /** Rank. */
  rank: number;
  /** The chosen learning rate (null when every selection run diverged). */
  lr: LrChoice | null;
  /** Evaluation metric of each seed's run (null where that run diverged). */
  values: (number | null)[];
  /** Seeds, in the order of `values`. */
  seeds: number[];
  /** Mean over the seeds that finished. */
  mean: number;
  /** Sample std over the seeds that finished. */
  std: number;
  /** Seeds that finished. */
  n: number;
  /** Trainable parameters. */
  trainable: number;
  /** P%: trainable parameters relative to LoRA at the same rank. */
  percentOfLora: number;
  /** Whether every run this cell needs is recorded. */
  complete: boolean;
  /** The rates tried with every seed (see {@link planCell}); more than one when the favourite was unstable. */
  tried?: Candidate[];
}

/** What {@link summarize} needs to know about a sweep's plan. */
export interface SweepShape {
  /** Methods, in table order. */
  methods: readonly string[];
  /** Ranks, ascending. */
  ranks: readonly number[];
  /** Learning-rate grid. */
  grid: readonly number[];
  /** Seeds of the final runs; the first is also the selection seed. */
  seeds: readonly number[];
}

/** The table's cells from recorded runs (runs not needed by `shape` are ignored). */
export function summarize(runs: readonly SweepRun[], shape: SweepShape): Cell[] {
  const byKey = new Map(runs.map((r) => [runKey(r), r]));
  const cells: Cell[] = [];
  for (const method of shape.methods) {
    for (const rank of shape.ranks) {
      const plan = planCell(byKey, method, rank, shape);
      const lr = plan.choice;
      const finals = lr ? shape.seeds.map((seed) => byKey.get(runKey({ method, rank, lr: lr.lr, seed }))) : [];
      const values = finals.map((r) => r?.evalMetric ?? null);
      const finite = values.filter((v): v is number => v !== null && Number.isFinite(v));
      const s = meanStd(finite);
      const any = shape.grid.map((g) => byKey.get(runKey({ method, rank, lr: g, seed: shape.seeds[0] }))).find((r) =>
        r
      );
      cells.push({
        method,
        rank,
        lr,
        values,
        seeds: lr ? [...shape.seeds] : [],
        mean: s.mean,
        std: s.std,
        n: s.n,
        trainable: any?.trainable ?? NaN,
        percentOfLora: any?.percentOfLora ?? NaN,
        complete: plan.need.length === 0,
        tried: plan.tried,
      });
    }
  }
  return cells;
}

/** A cell far below the best method at its rank (under half its mean), or with no finished seed. */
export interface Collapse {
  /** The cell. */
  cell: Cell;
  /** The best mean at that rank. */
  best: number;
  /** Why: where its chosen learning rate lies in the grid, in words. */
  note: string;
}

/**
 * Cells that collapsed: a mean under half the best mean at the same rank, or
 * no seed that finished. Each says where its chosen rate lies: at the grid's
 * smallest rate the collapse persists at the smallest rate tried; at its
 * largest, a larger rate was not tried; inside, the rate is not the cause.
 */
export function collapses(cells: readonly Cell[]): Collapse[] {
  const out: Collapse[] = [];
  for (const c of cells) {
    if (!c.complete) continue;
    const peers = cells.filter((x) => x.rank === c.rank && x.complete && x.n > 0);
    const best = Math.max(...peers.map((x) => x.mean));
    const collapsed = c.n === 0 || (best > 0 && c.mean < best / 2);
    if (!collapsed) continue;
    const note = !c.lr
      ? "every run of the grid diverged"
      : c.lr.edge === "smallest"
      ? `persists at the smallest learning rate of the grid (${c.lr.lr}): a smaller one was not tried`
      : c.lr.edge === "largest"
      ? `its best learning rate is the largest of the grid (${c.lr.lr}): a larger one was not tried`
      : `its best learning rate (${c.lr.lr}) is inside the grid: not for want of another rate`;
    out.push({ cell: c, best, note });
  }
  return out;
}

/** A verdict on a claim. */
export type Verdict = "holds" | "does not hold" | "inconclusive" | "not tested";

/** A difference of two cells' means with its uncertainty: a − b ± 2·se. */
export interface Diff {
  /** mean(a) − mean(b). */
  diff: number;
  /** 2·sqrt(std(a)²/n(a) + std(b)²/n(b)): about a 95% interval for normal seed noise. */
  margin: number;
}

/** a − b with its margin (see {@link Diff}). */
export function diff(a: Cell, b: Cell): Diff {
  const se = Math.sqrt(a.std ** 2 / a.n + b.std ** 2 / b.n);
  return { diff: a.mean - b.mean, margin: 2 * se };
}

/** "a is at most `delta` above b" (b within `delta` of a): holds when the whole interval is ≤ delta. */
export function within(d: Diff, delta: number): Verdict {
  if (d.diff + d.margin <= delta) return "holds";
  if (d.diff - d.margin > delta) return "does not hold";
  return "inconclusive";
}

/** "a is more than `delta` above b" (b falls behind a): holds when the whole interval is > delta. */
export function behind(d: Diff, delta: number): Verdict {
  if (d.diff - d.margin > delta) return "holds";
  if (d.diff + d.margin <= delta) return "does not hold";
  return "inconclusive";
}

/** Combines verdicts that must all hold: any "does not hold" wins, then any "inconclusive". */
export function all(vs: readonly Verdict[]): Verdict {
  if (!vs.length || vs.includes("not tested")) return "not tested";
  if (vs.includes("does not hold")) return "does not hold";
  if (vs.includes("inconclusive")) return "inconclusive";
  return "holds";
}

/** A claim of the paper, checked. */
export interface Claim {
  /** The claim, as the paper makes it (adapted to this sweep's ranks). */
  claim: string;
  /** Its verdict here. */
  verdict: Verdict;
  /** The numbers behind the verdict. */
  evidence: string[];
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");
const fmtDiff = (d: Diff) => `${d.diff >= 0 ? "+" : ""}${fmt(d.diff)} ± ${fmt(d.margin)}`;

/**
 * The paper's claims (docs/TIED_LORA.md §3) checked against the cells, with
 * `delta` the tolerance in metric points (the paper's "within 1–2 points":
 * default 2). Differences are mean differences ± 2·se over seeds; a claim
 * holds when its whole interval agrees, does not hold when the whole interval
 * disagrees, and is inconclusive within the spread otherwise.
 */
export function checkClaims(cells: readonly Cell[], delta = 2, metric = "metric"): Claim[] {
  const get = (m: string, r: number) => cells.find((c) => c.method === m && c.rank === r && c.complete && c.n > 0);
  const ranks = [...new Set(cells.map((c) => c.rank))].sort((a, b) => a - b);
  const claims: Claim[] = [];
  const need = (what: string) => ({ verdict: "not tested" as Verdict, evidence: [`needs ${what}, not in this sweep`] });

  // 1. TL6 within 1–2 points of LoRA at r=8, at a fraction of its parameters.
  {
    const claim = `TL6 is within ${delta} points of LoRA at r=8, at a fraction of LoRA's parameters`;
    const t = get("tl6", 8), l = get("lora", 8);
    if (!t || !l) claims.push({ claim, ...need("tl6 and lora at r=8") });
    else {
      const d = diff(l, t);
      claims.push({
        claim,
        verdict: within(d, delta),
        evidence: [
          `LoRA − TL6 at r=8: ${fmtDiff(d)} ${metric} points (TL6 ${fmt(t.mean)} ± ${fmt(t.std)}, LoRA ${
            fmt(l.mean)
          } ± ${fmt(l.std)}); TL6 trains ${fmt(t.percentOfLora)}% of LoRA's parameters (the paper: 12.5% on LLaMA2-7B)`,
        ],
      });
    }
  }
  // 2. TL5 close behind TL6 at typical ranks (2–16).
  {
    const rs = ranks.filter((r) => r >= 2 && r <= 16 && get("tl5", r) && get("tl6", r));
    const claim = `TL5 is close behind TL6 (within ${delta} points) at the typical ranks 2–16`;
    if (!rs.length) claims.push({ claim, ...need("tl5 and tl6 at a rank in 2–16") });
    else {
      const ds = rs.map((r) => ({ r, d: diff(get("tl6", r)!, get("tl5", r)!) }));
      claims.push({
        claim,
        verdict: all(ds.map((x) => within(x.d, delta))),
        evidence: ds.map((x) => `TL6 − TL5 at r=${x.r}: ${fmtDiff(x.d)} (${within(x.d, delta)})`),
      });
    }
  }
  // 3. Frozen-A methods (TL3, TL4) and VeRA fall behind TL6.
  for (const m of ["tl3", "tl4", "vera"]) {
    const rs = ranks.filter((r) => get(m, r) && get("tl6", r));
    const claim = `${m.toUpperCase()} falls behind TL6 (by more than ${delta} points)${
      m === "vera" ? "" : " as the rank grows (A frozen)"
    }`;
    if (!rs.length) {
      claims.push({ claim, ...need(`${m} and tl6 at a common rank`) });
      continue;
    }
    const ds = rs.map((r) => ({ r, d: diff(get("tl6", r)!, get(m, r)!) }));
    // VeRA: behind at every rank; TL3/TL4: behind at the largest rank swept (the paper: they drop most there).
    const tested = m === "vera" ? ds : ds.slice(-1);
    claims.push({
      claim: m === "vera" ? claim + " at every rank" : claim + `: behind at the largest rank, r=${rs.at(-1)}`,
      verdict: all(tested.map((x) => behind(x.d, delta))),
      evidence: ds.map((x) => `TL6 − ${m.toUpperCase()} at r=${x.r}: ${fmtDiff(x.d)} (${behind(x.d, delta)})`),
    });
  }
  // 4. Stability across ranks: TL6 stable; TL5 degrades at high ranks (above 16).
  {
    const claim = `TL6 is stable across ranks (no rank more than ${delta} points below its best rank)`;
    const cs = ranks.map((r) => get("tl6", r)).filter((c): c is Cell => !!c);
    if (cs.length < 2) claims.push({ claim, ...need("tl6 at two or more ranks") });
    else claims.push({ claim, ...stability(cs, delta) });
  }
  {
    const hi = ranks.filter((r) => r > 16 && get("tl5", r));
    const lo = ranks.filter((r) => r >= 2 && r <= 16 && get("tl5", r));
    const claim = `TL5 degrades at high ranks (above 16: more than ${delta} points below its best typical rank)`;
    if (!hi.length || !lo.length) claims.push({ claim, ...need("tl5 at a rank in 2–16 and one above 16") });
    else {
      const best = lo.map((r) => get("tl5", r)!).sort((a, b) => b.mean - a.mean)[0];
      const ds = hi.map((r) => ({ r, d: diff(best, get("tl5", r)!) }));
      claims.push({
        claim,
        verdict: all(ds.map((x) => behind(x.d, delta))),
        evidence: ds.map((x) => `TL5 r=${best.rank} − r=${x.r}: ${fmtDiff(x.d)} (${behind(x.d, delta)})`),
      });
    }
  }
  return claims;
}

/** Stability of one method's cells across ranks: each rank within `delta` of its best rank. */
export function stability(cs: readonly Cell[], delta: number): { verdict: Verdict; evidence: string[] } {
  const best = [...cs].sort((a, b) => b.mean - a.mean)[0];
  const others = cs.filter((c) => c !== best);
  const ds = others.map((c) => ({ c, d: diff(best, c) }));
  return {
    verdict: all(ds.map((x) => within(x.d, delta))),
    evidence: [
      `best at r=${best.rank} (${fmt(best.mean)} ± ${fmt(best.std)}); ` +
      ds.map((x) => `r=${x.c.rank}: ${fmtDiff({ diff: -x.d.diff, margin: x.d.margin })}`).join(", "),
    ],
  };
}
