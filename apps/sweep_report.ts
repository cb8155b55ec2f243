/**
 * The report of a sweep (apps/sweep.ts), from its results alone: Markdown with
 * the paper's Table 2 shape (metric ± std and P% per method × rank), the
 * learning rates chosen on validation, the collapses, and each claim of the
 * paper with its computed verdict; and an SVG in Figure 2's shape (metric vs
 * rank per method, error bars ± std over seeds). No timing enters it, so a
 * resumed sweep reports exactly what an uninterrupted one does.
 * @module
 */
import { lineChart } from "./plot.ts";
import type { SweepHeader } from "./sweep.ts";
import {
  type Cell,
  checkClaims,
  type Claim,
  collapses,
  stability,
  summarize,
  type SweepRun,
  type SweepShape,
} from "./sweep_stats.ts";

/** What a report is made of. */
export interface SweepReport {
  /** The cells of the table. */
  cells: Cell[];
  /** The claims with their verdicts. */
  claims: Claim[];
  /** The Markdown report. */
  markdown: string;
  /** The figure (SVG). */
  svg: string;
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");

/** A table in Markdown (header row, alignment row, body rows). */
function table(head: string[], rows: string[][], align: ("l" | "r")[]): string[] {
  return [
    `| ${head.join(" | ")} |`,
    `|${align.map((a) => (a === "r" ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ];
}

/**
 * The report of the runs recorded in a results file. `delta` is the claims'
 * tolerance in metric points (default 2: the paper's "within 1–2 points");
 * `figure` the SVG's file name, linked from the Markdown.
 */
export function sweepReport(
  header: SweepHeader,
  runs: readonly SweepRun[],
  shape: SweepShape,
  opts: { delta?: number; figure?: string } = {},
): SweepReport {
  const delta = opts.delta ?? 2;
  const figure = opts.figure ?? "sweep.svg";
  const cells = summarize(runs, shape);
  const name = header.base.metricName;
  const s = header.settings;
  const at = (m: string, r: number) => cells.find((c) => c.method === m && c.rank === r)!;
  const cellText = (c: Cell) =>
    !c.complete
      ? "(missing)"
      : c.n === 0
      ? "diverged"
      : `${f2(c.mean)} ± ${f2(c.std)}${c.n < c.seeds.length ? ` (n=${c.n})` : ""}`;
  const claims = checkClaims(cells, delta, name);
  const coll = collapses(cells);
  const incomplete = cells.filter((c) => !c.complete).length;
  // Cells whose seed-0 favourite was replaced, or confirmed only after other rates were tried.
  const raced = cells.filter((c) => c.lr && (c.tried?.length ?? 0) > 1);

  const md: string[] = [
    `# Sweep: ${s.task} on ${s.model}`,
    "",
    `${shape.methods.length} methods × ranks ${shape.ranks.join(", ")}; per cell the learning rate is chosen from ` +
    `{${shape.grid.join(", ")}} by the ${name} on the validation split (${s.valSize} examples held out of the ` +
    `training split, disjoint from the evaluation split): every rate is tried at seed ${shape.seeds[0]}, then the ` +
    `best is tried with all ${shape.seeds.length} seeds (${shape.seeds.join(", ")}), and the next rates too while ` +
    `their seed-${shape.seeds[0]} score beats the best mean over seeds so far; the rate with the best validation ` +
    `mean over seeds is kept (ties: validation loss), and its seeds' evaluation scores are the cell. ` +
    `${s.steps} steps per run, batch ${s.batchSize}, seq ` +
    `${s.seqLen}, AdamW (0.9, 0.98, wd 0.01), clip 1, cosine with ${s.warmup} warm-up steps. Backend ${s.backend}.`,
    "",
    `Metric: ${name} on ${s.evalLimit} evaluation examples, mean ± std (n − 1) over seeds. Base model (no ` +
    `adapter): ${f2(header.base.evalMetric)} (validation ${f2(header.base.valMetric)}). P% is the trainable-` +
    `parameter count relative to LoRA at the same rank.`,
    ...(incomplete
      ? ["", `**Incomplete: ${incomplete} cells are missing runs; rerun the same command to finish.**`]
      : []),
    "",
    "## Table 2 shape",
    "",
    ...table(
      ["method", ...shape.ranks.map((r) => `r=${r} ${name}`), ...shape.ranks.map((r) => `r=${r} P%`)],
      shape.methods.map((m) => [
        m,
        ...shape.ranks.map((r) => cellText(at(m, r))),
        ...shape.ranks.map((r) => f2(at(m, r).percentOfLora)),
      ]),
      ["l", ...shape.ranks.map(() => "r" as const), ...shape.ranks.map(() => "r" as const)],
    ),
    "",
    `![${name} vs rank per method](${figure})`,
    "",
    "## Learning rates chosen on validation",
    "",
    "`<` marks a rate at the grid's smallest, `>` at its largest; `†` a rate chosen over the seed-0 favourite " +
    "(listed below the table).",
    "",
    ...table(
      ["method", ...shape.ranks.map((r) => `r=${r}`)],
      shape.methods.map((m) => [
        m,
        ...shape.ranks.map((r) => {
          const c = at(m, r);
          if (!c.lr) return c.complete ? "all diverged" : "–";
          const dagger = (c.tried?.length ?? 0) > 1 && c.tried![0].lr !== c.lr.lr ? " †" : "";
          return `${c.lr.lr}${c.lr.edge === "smallest" ? " <" : c.lr.edge === "largest" ? " >" : ""}${dagger}`;
        }),
      ]),
      ["l", ...shape.ranks.map(() => "r" as const)],
    ),
    ...raced.flatMap((c, i) => [
      ...(i === 0 ? [""] : []),
      `- ${c.method} r=${c.rank}: ${
        c.tried!.map((t) => `${t.lr} (seed-${shape.seeds[0]} ${f2(t.seed0)}, mean over seeds ${f2(t.meanVal)})`)
          .join(", then ")
      } → ${c.lr!.lr}`,
    ]),
    "",
    "## Collapses",
    "",
    coll.length
      ? `A cell collapses when its mean is under half the best mean at its rank, or no seed finished.`
      : "No cell collapsed (none under half the best mean at its rank).",
    ...(coll.length ? [""] : []),
    ...coll.map((x) =>
      `- ${x.cell.method} r=${x.cell.rank}: ${cellText(x.cell)} against the best ${
        f2(x.best)
      } at r=${x.cell.rank}; ${x.note}.`
    ),
    "",
    "## The paper's claims, checked",
    "",
    `Differences are of means over seeds, ± 2·sqrt(std²/n + std²/n) (about a 95% interval for normal seed noise). ` +
    `A claim holds when its whole interval agrees, does not hold when its whole interval disagrees, and is ` +
    `inconclusive within the spread otherwise. Tolerance: ${delta} points (the paper's "within 1–2 points").`,
    "",
    ...claims.flatMap((c, i) => [
      `${i + 1}. **${c.verdict}** — ${c.claim}.`,
      ...c.evidence.map((e) => `   - ${e}`),
    ]),
    "",
    "### Stability of every method across ranks",
    "",
    ...table(
      ["method", "verdict", "evidence"],
      shape.methods.flatMap((m) => {
        const cs = shape.ranks.map((r) => at(m, r)).filter((c) => c.complete && c.n > 0);
        if (cs.length < 2) return [[m, "not tested", "fewer than two ranks"]];
        const st = stability(cs, delta);
        return [[m, st.verdict, st.evidence.join("; ")]];
      }),
      ["l", "l", "l"],
    ),
    "",
  ];

  const svg = lineChart(
    shape.methods.map((m) => {
      const cs = shape.ranks.map((r) => at(m, r));
      return {
        name: m,
        points: cs.map((c) => [c.rank, c.n ? c.mean : NaN] as [number, number]),
        errors: cs.map((c) => c.std),
      };
    }),
    {
      title: `${name} vs rank (${s.task}), mean ± std over ${shape.seeds.length} seeds`,
      xLabel: "rank r",
      yLabel: name,
      logX: true,
      dodge: 4,
    },
  );
  return { cells, claims, markdown: md.join("\n"), svg };
}
