/**
 * What a plan trains: a table of every adapter leaf (path, shape, trainable
 * or frozen, tie group and its size), trainable counts, and P% relative to
 * LoRA; `countTrainable` works from shapes alone, without allocating weights.
 * @module
 */
import { fmt, type Shape, sizeOf } from "../core/shape.ts";
import type { Tree } from "../core/tree.ts";
import { preset } from "./methods/presets.ts";
import { type Plan, type PlanTree, type Resolved, storagePath } from "./plan.ts";
import * as tree from "../core/tree.ts";

/** Trainable and frozen element counts of a resolved plan (a tied group counted once). */
export function countResolved(r: Resolved): { trainable: number; frozenAdapter: number } {
  const seen = new Set<string>();
  let trainable = 0, frozenAdapter = 0;
  for (const l of r.leaves) {
    const sp = storagePath(l);
    if (seen.has(sp)) continue;
    seen.add(sp);
    if (l.trainable) trainable += sizeOf(l.shape);
    else frozenAdapter += sizeOf(l.shape);
  }
  for (const p of r.baseTrainable) trainable += sizeOf(r.baseShapes.get(p)!);
  return { trainable, frozenAdapter };
}

/** Model dimensions for {@link countTrainable}. */
export interface CountDims {
  /** Number of layers. */
  layers: number;
  /** Hidden size d. */
  hidden: number;
  /** Width of K and V (numKvHeads·headDim); default `hidden` (no grouped-query attention). */
  kvHidden?: number;
  /** MLP width, needed only for plans with MLP sites. */
  intermediate?: number;
  /** Adapter rank r. */
  rank: number;
}

/** Leaf shapes of a Llama-style model of the given dimensions, without allocating it. */
export function llamaShapes(d: Omit<CountDims, "rank">): Map<string, Shape> {
  const { layers, hidden, kvHidden = hidden, intermediate } = d;
  const m = new Map<string, Shape>();
  for (let i = 0; i < layers; i++) {
    m.set(`layers.${i}.attn.q.weight`, [hidden, hidden]);
    m.set(`layers.${i}.attn.k.weight`, [kvHidden, hidden]);
    m.set(`layers.${i}.attn.v.weight`, [kvHidden, hidden]);
    m.set(`layers.${i}.attn.o.weight`, [hidden, hidden]);
    if (intermediate) {
      m.set(`layers.${i}.mlp.gate.weight`, [intermediate, hidden]);
      m.set(`layers.${i}.mlp.up.weight`, [intermediate, hidden]);
      m.set(`layers.${i}.mlp.down.weight`, [hidden, intermediate]);
    }
  }
  return m;
}

/**
 * Trainable parameters of `method` (a preset name or a plan; a plan's own
 * rank is kept) on a Llama-style model, computed from shapes alone.
 * @example
 * countTrainable("tl6", { layers: 32, hidden: 4096, rank: 8 }); // 4dr + L(r + 3d) = 524544
 */
export function countTrainable(method: string | Plan, dims: CountDims): number {
  const plan = typeof method === "string" ? preset(method, { rank: dims.rank }) : method;
  return countResolved(plan.resolve(llamaShapes(dims))).trainable;
}

/** One row of a {@link summary}. */
export interface SummaryRow {
  /** Leaf path (`<site>.<part>`). */
  path: string;
  /** Leaf shape. */
  shape: number[];
  /** Whether it is trained. */
  trainable: boolean;
  /** Tie group, or null. */
  group: string | null;
  /** Number of sites sharing this leaf's storage (1 when untied). */
  groupSize: number;
  /** Initializer, as `name(args)`. */
  initializer: string;
}

/** The result of {@link summary}. */
export interface Summary {
  /** One row per adapter leaf. */
  rows: SummaryRow[];
  /** Trainable parameters (adapter leaves stored once, plus base leaves made trainable). */
  trainable: number;
  /** Frozen adapter parameters (e.g. VeRA's shared matrices). */
  frozenAdapter: number;
  /** LoRA's trainable count at `loraRank` on the same sites. */
  loraTrainable: number;
  /** The LoRA rank compared against. */
  loraRank: number;
  /** trainable / loraTrainable · 100. */
  percentOfLora: number;
  /** A readable table. */
  toString(): string;
}

/**
 * Summarises a plan against its materialised trees: every adapter leaf, the
 * trainable count and P% relative to LoRA at `loraRank` (default the plan's
 * rank) on the same sites. Tied rows are listed once, with their group size.
 */
export function summary(plan: Plan, trainable: PlanTree, frozen: PlanTree, opts: { loraRank?: number } = {}): Summary {
  const base = tree.combine(trainable.base, frozen.base) as Tree;
  const r = plan.resolve(base);
  const groupSizes = new Map<string, number>();
  for (const l of r.leaves) if (l.group) groupSizes.set(l.group, (groupSizes.get(l.group) ?? 0) + 1);
  const seen = new Set<string>();
  const rows: SummaryRow[] = [];
  for (const l of r.leaves) {
    const sp = storagePath(l);
    if (seen.has(sp)) continue;
    seen.add(sp);
    rows.push({
      path: l.group ? `tied.${l.group}` : l.path,
      shape: l.shape,
      trainable: l.trainable,
      group: l.group,
      groupSize: l.group ? groupSizes.get(l.group)! : 1,
      initializer: `${l.init.name}${
        Object.keys(l.init.args).length ? `(${Object.values(l.init.args).map((v) => +v.toFixed(4)).join(", ")})` : ""
      }`,
    });
  }
  for (const p of r.baseTrainable) {
    rows.push({
      path: `base.${p}`,
      shape: r.baseShapes.get(p)!,
      trainable: true,
      group: null,
      groupSize: 1,
      initializer: "base",
    });
  }
  const counts = countResolved(r);
  const loraRank = opts.loraRank ?? (plan.meta.rank as number | undefined) ??
    r.leaves.find((l) => l.part === "A")?.shape[0] ?? 1;
  const sites = new Set(r.sites.map((s) => s.path));
  const loraCount =
    countResolved(preset("lora", { rank: loraRank, where: (p) => sites.has(p) }).resolve(r.baseShapes)).trainable;
  const percent = (100 * counts.trainable) / loraCount;
  return {
    rows,
    trainable: counts.trainable,
    frozenAdapter: counts.frozenAdapter,
    loraTrainable: loraCount,
    loraRank,
    percentOfLora: percent,
    toString() {
      const compact = compactRows(rows);
      const head = ["leaf", "shape", "", "tied", "init"];
      const body = compact.map((
        x,
      ) => [x.path, fmt(x.shape), x.trainable ? "train" : "frozen", x.group ? `×${x.groupSize}` : "", x.initializer]);
      const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
      const line = (c: string[]) => c.map((s, i) => s.padEnd(w[i])).join("  ").trimEnd();
      const name = plan.meta.preset ? `${String(plan.meta.preset).toUpperCase()} ` : "";
      return [
        line(head),
        ...body.map(line),
        `${name}trainable: ${counts.trainable.toLocaleString("en-US")} parameters = ${
          percent.toFixed(2)
        }% of LoRA at r=${loraRank} (${loraCount.toLocaleString("en-US")})` +
        (counts.frozenAdapter ? `; frozen adapter: ${counts.frozenAdapter.toLocaleString("en-US")}` : ""),
      ].join("\n");
    },
  };
}

/** Folds per-layer rows that differ only in the layer index into one `layers.{0..L-1}` row. */
function compactRows(rows: SummaryRow[]): (SummaryRow & { count: number })[] {
  const out = new Map<string, SummaryRow & { count: number; indices: number[] }>();
  for (const r of rows) {
    const m = r.path.match(/^(.*?)\.(\d+)\.(.*)$/);
    const key = m ? `${m[1]}.*.${m[3]}|${r.trainable}|${r.initializer}|${fmt(r.shape)}` : r.path;
    const prev = out.get(key);
    if (prev && m) {
      prev.count++;
      prev.indices.push(Number(m[2]));
    } else out.set(key, { ...r, count: 1, indices: m ? [Number(m[2])] : [] });
  }
  return [...out.values()].map((r) => {
    if (r.count <= 1) return r;
    const m = r.path.match(/^(.*?)\.(\d+)\.(.*)$/)!;
    const lo = Math.min(...r.indices), hi = Math.max(...r.indices);
    return { ...r, path: `${m[1]}.{${lo}..${hi}}.${m[3]}` };
  });
}
