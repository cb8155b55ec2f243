/**
 * Folding adapters into the base weights, ΔW = diag(v)·B·diag(u)·A per site
 * (float32), so inference costs nothing extra; `unmerge` takes it back out.
 * And the per-module LoRA factors any Tied-LoRA plan is equivalent to
 * (spec §4: lora_A = diag(u)·A, lora_B = diag(v)·B restricted to each block).
 * @module
 */
import { isTensor, type Tensor } from "../core/tensor.ts";
import { add, mul, sub } from "../core/ops/elementwise.ts";
import { matmul } from "../core/ops/matmul.ts";
import { expandDims, slice } from "../core/ops/movement.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { compose, type Plan, type PlanTree, type Site } from "./plan.ts";
import { adapt } from "./transforms.ts";
import { zeros } from "./initializers.ts";

/** Rank-r factors of one linear module: ΔW = B·A, with B [out, r] and A [r, in]. */
export interface LoraFactors {
  /** Path of the linear node, e.g. `layers.3.attn.q`. */
  module: string;
  /** Down-projection [r, in]. */
  A: Tensor;
  /** Up-projection [out, r]. */
  B: Tensor;
}

function siteParts(
  plan: Plan,
  trainable: PlanTree,
  frozen: PlanTree,
): { base: Tree; sites: { site: Site; parts: Record<string, Tensor> }[] } {
  const built = plan.build(trainable, frozen);
  const base = tree.combine(trainable.base, frozen.base);
  const r = plan.resolve(base);
  return {
    base,
    sites: r.sites.map((site) => {
      const node = tree.at(built, site.path) as Record<string, Tensor>;
      return { site, parts: node };
    }),
  };
}

/** The LoRA factors equivalent to a plan: u folded into A, v into B, fused sites split per member. */
export function toLoraFactors(plan: Plan, trainable: PlanTree, frozen: PlanTree): LoraFactors[] {
  const { sites } = siteParts(plan, trainable, frozen);
  const out: LoraFactors[] = [];
  for (const { site, parts } of sites) {
    if (!parts.A || !parts.B) continue; // no complete update at this site
    const A = parts.u ? mul(parts.A, expandDims(parts.u, 1)) : parts.A;
    const B = parts.v ? mul(parts.B, expandDims(parts.v, 1)) : parts.B;
    if (!site.fusedOf) {
      out.push({ module: site.path, A, B });
      continue;
    }
    const parent = site.path.split(".").slice(0, -1).join(".");
    let row = 0;
    site.fusedOf.forEach((member, i) => {
      const rows = site.outSplit![i];
      out.push({ module: parent ? `${parent}.${member}` : member, A, B: slice(B, [row], [row + rows]) });
      row += rows;
    });
  }
  return out;
}

function applyDelta(plan: Plan, trainable: PlanTree, frozen: PlanTree, base: Tree, sign: 1 | -1): Tree {
  let out = base;
  for (const f of toLoraFactors(plan, trainable, frozen)) {
    const path = `${f.module}.weight`;
    const w = tree.at(out, path) as Tensor;
    const delta = matmul(f.B, f.A);
    out = tree.set(out, path, sign > 0 ? add(w, delta) : sub(w, delta));
  }
  return out;
}

/** The base tree with every site's ΔW added to its weights (adapter leaves dropped). */
export function merge(plan: Plan, trainable: PlanTree, frozen: PlanTree): Tree {
  return applyDelta(plan, trainable, frozen, tree.combine(trainable.base, frozen.base), 1);
}

/** Takes a merge back out of `merged` (exact up to float32 rounding). */
export function unmerge(plan: Plan, trainable: PlanTree, frozen: PlanTree, merged: Tree): Tree {
  return applyDelta(plan, trainable, frozen, merged, -1);
}

/**
 * A LoRA plan holding the given factors: one site per module (r from the
 * factors), A and B trainable. The inverse of {@link toLoraFactors} up to the
 * grouping of sites.
 */
export function fromLoraFactors(
  factors: readonly LoraFactors[],
  base: Tree,
): { plan: Plan; trainable: PlanTree; frozen: PlanTree } {
  if (!factors.length) throw new Error("fromLoraFactors: no factors given");
  const byModule = new Map(factors.map((f) => [f.module, f]));
  const ranks = new Set(factors.map((f) => f.A.shape[0]));
  const steps = [...ranks].map((rank) =>
    adapt({ where: (p) => byModule.get(p)?.A.shape[0] === rank, rank, parts: ["A", "B"], init: { A: zeros, B: zeros } })
  );
  const plan = compose(...steps);
  const r = plan.resolve(base);
  for (const f of factors) {
    if (!r.sites.some((s) => s.path === f.module)) {
      throw new Error(`fromLoraFactors: module "${f.module}" is not a linear node of the base model`);
    }
  }
  const frozen: PlanTree = { base, tied: {}, sites: null };
  const sites: Record<string, unknown> = {};
  for (const f of factors) {
    let node: Record<string, unknown> = sites;
    const segs = f.module.split(".");
    segs.forEach((s, i) => {
      node[s] ??= /^\d+$/.test(segs[i + 1] ?? "") ? [] : {};
      node = node[s] as Record<string, unknown>;
    });
    node.A = f.A;
    node.B = f.B;
  }
  const fill = (x: unknown): unknown =>
    Array.isArray(x)
      ? Array.from({ length: x.length }, (_, i) => fill(x[i] ?? null))
      : x && typeof x === "object" && !isTensor(x)
      ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, fill(v)]))
      : x;
  const trainable: PlanTree = { base: tree.map(base, () => null), tied: {}, sites: fill(sites) as Tree };
  return { plan, trainable, frozen };
}
