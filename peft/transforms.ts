/**
 * The transforms plans are made of. Each is a pure function of the plan's
 * declarative state; see plan.ts for how they are resolved and materialised.
 *
 * - `adapt({where, rank, parts})` adds adapter leaves A [r, in], B [out, r],
 *   u [r], v [out] (any subset) at every matched site;
 * - `tie({where, groupBy})` stores matched leaves once (per group);
 * - `freeze({where})` / `unfreeze({where})` set trainability (adapter or base leaves;
 *   the base model starts frozen);
 * - `initialize({where, with})` sets initializers.
 *
 * A pattern that matches nothing, a tie of mismatched shapes, or a path that
 * does not exist is an Error naming the pattern.
 * @module
 */
import { fmt } from "../core/shape.ts";
import * as tree from "../core/tree.ts";
import { glob } from "../core/tree.ts";
import { type Initializer, kaimingUniform, ones, zeros } from "./initializers.ts";
import type { LeafSpec, Part, Resolved, Site, Transform } from "./plan.ts";

/** A glob over dotted paths, or a predicate on them. */
export type PathPattern = string | ((path: string) => boolean);

function matcher(pattern: PathPattern): (path: string) => boolean {
  if (typeof pattern === "string") return tree.glob(pattern);
  if (typeof pattern === "function") return pattern;
  throw new Error(`peft: expected a glob or a predicate, got ${typeof pattern}`);
}

function describePattern(p: PathPattern): string {
  return typeof p === "string" ? `"${p}"` : `predicate ${p.name || "(anonymous)"}`;
}

function examples(paths: string[]): string {
  return paths.length ? ` (candidates look like: ${paths.slice(0, 3).join(", ")}${paths.length > 3 ? ", …" : ""})` : "";
}

/** Fused sites: a site named `name` under a node means the row-wise concatenation of these sibling linears. */
export const DEFAULT_FUSED: Readonly<Record<string, readonly string[]>> = { qkv: ["q", "k", "v"] };

/** The sites a base model offers: every linear node (`{weight: [out, in]}`) and every fused group present. */
export function candidateSites(
  baseShapes: Map<string, number[]>,
  fused: Record<string, readonly string[]> = DEFAULT_FUSED,
): Site[] {
  const sites: Site[] = [];
  const parents = new Set<string>();
  for (const [p, s] of baseShapes) {
    if (!p.endsWith(".weight") || s.length !== 2) continue;
    const node = p.slice(0, -".weight".length);
    sites.push({ path: node, in: s[1], out: s[0], fusedOf: null, outSplit: null });
    parents.add(node.split(".").slice(0, -1).join("."));
  }
  for (const parent of parents) {
    for (const [name, members] of Object.entries(fused)) {
      const shapes = members.map((m) => baseShapes.get(parent ? `${parent}.${m}.weight` : `${m}.weight`));
      if (shapes.some((s) => !s || s.length !== 2) || new Set(shapes.map((s) => s![1])).size !== 1) continue;
      sites.push({
        path: parent ? `${parent}.${name}` : name,
        in: shapes[0]![1],
        out: shapes.reduce((acc, s) => acc + s![0], 0),
        fusedOf: [...members],
        outSplit: shapes.map((s) => s![0]),
      });
    }
  }
  return sites;
}

/** Options of {@link adapt}. */
export interface AdaptOptions {
  /** Sites (glob or predicate over site paths). Default: each layer's fused Q|K|V map, `layers.*.attn.qkv`. */
  where?: PathPattern;
  /** Rank r. */
  rank: number;
  /** Which adapter leaves to add (default A and B). A frozen vector of ones is the same as leaving it out. */
  parts?: readonly Part[];
  /** Initializers per part (defaults: A Kaiming-uniform, B zeros, u ones, v ones — so ΔW = 0). */
  init?: Partial<Record<Part, Initializer>>;
  /** Fused site names (default `{qkv: ["q","k","v"]}`). */
  fused?: Record<string, readonly string[]>;
  /** Nodes that hold `{weight}` but are lookups, not linear maps: never sites (default `"**.embed"`). */
  lookupTables?: string;
}

const DEFAULT_INIT: Record<Part, Initializer> = { A: kaimingUniform(), B: zeros, u: ones, v: ones };

/** Adds adapter leaves at every matched site. */
export function adapt(opts: AdaptOptions): Transform {
  const {
    where = "layers.*.attn.qkv",
    rank,
    parts = ["A", "B"],
    init = {},
    fused = DEFAULT_FUSED,
    lookupTables = "**.embed",
  } = opts;
  if (!Number.isInteger(rank) || rank <= 0) throw new Error(`adapt: rank must be a positive integer, got ${rank}`);
  for (const p of parts) {
    if (!["A", "B", "u", "v"].includes(p)) throw new Error(`adapt: unknown part "${p}" (parts are A, B, u, v)`);
  }
  const match = matcher(where);
  return {
    describe: { transform: "adapt", where: typeof where === "string" ? where : "<predicate>", rank, parts: [...parts] },
    apply(state: Resolved): Resolved {
      const all = candidateSites(state.baseShapes, fused);
      const isTable = glob(lookupTables);
      const candidates = all.filter((s) => !isTable(s.path));
      const chosen = candidates.filter((s) => match(s.path));
      if (!chosen.length) {
        const tables = all.filter((s) => isTable(s.path) && match(s.path)).map((s) => s.path);
        throw new Error(
          tables.length
            ? `adapt: "${
              tables[0]
            }" is an embedding table (a lookup, not a linear map in the forward), so it cannot carry a low-rank update`
            : `adapt: site pattern ${describePattern(where)} matches no site${examples(candidates.map((s) => s.path))}`,
        );
      }
      const taken = new Set(state.sites.map((s) => s.path));
      const leaves: LeafSpec[] = [];
      for (const site of chosen) {
        if (taken.has(site.path)) throw new Error(`adapt: site "${site.path}" already has an adapter`);
        const shapes: Record<Part, number[]> = { A: [rank, site.in], B: [site.out, rank], u: [rank], v: [site.out] };
        for (const part of parts) {
          leaves.push({
            path: `${site.path}.${part}`,
            site: site.path,
            part,
            shape: shapes[part],
            trainable: true,
            init: init[part] ?? DEFAULT_INIT[part],
            group: null,
          });
        }
      }
      return { ...state, sites: [...state.sites, ...chosen], leaves: [...state.leaves, ...leaves] };
    },
  };
}

/** The default tie group of a leaf: its path without layer indices ("layers.3.attn.qkv.A" → "layers/attn/qkv/A"). */
export function acrossLayers(path: string): string {
  return path.split(".").filter((s) => !/^\d+$/.test(s)).join("/");
}

/** Options of {@link tie}. */
export interface TieOptions {
  /** Adapter leaves to tie (glob or predicate over leaf paths such as `layers.*.attn.qkv.A`). */
  where: PathPattern;
  /** Group key of a leaf (default {@link acrossLayers}: one group per leaf name across layers). */
  groupBy?: (path: string) => string;
}

/** Stores all matched leaves of a group once; every site then uses the same tensor. */
export function tie(opts: TieOptions): Transform {
  const { where, groupBy = acrossLayers } = opts;
  const match = matcher(where);
  return {
    describe: {
      transform: "tie",
      where: typeof where === "string" ? where : "<predicate>",
      groupBy: groupBy === acrossLayers ? "acrossLayers" : groupBy.name || "<function>",
    },
    apply(state: Resolved): Resolved {
      const hits = state.leaves.filter((l) => match(l.path));
      if (!hits.length) {
        const base = [...state.baseShapes.keys()].filter((p) => match(p));
        throw new Error(
          base.length
            ? `tie: pattern ${describePattern(where)} matches base leaves (${
              base.slice(0, 2).join(", ")
            }); only adapter leaves can be tied`
            : `tie: pattern ${describePattern(where)} matches no adapter leaf${
              examples(state.leaves.map((l) => l.path))
            }`,
        );
      }
      const groups = new Map<string, LeafSpec[]>();
      for (const l of hits) {
        const g = String(groupBy(l.path)).replaceAll(".", "/");
        if (!g) throw new Error(`tie: groupBy returned an empty group name for "${l.path}"`);
        groups.set(g, [...(groups.get(g) ?? []), l]);
      }
      for (const [g, members] of groups) {
        const s0 = members[0].shape;
        const odd = members.find((m) => m.shape.length !== s0.length || m.shape.some((d, i) => d !== s0[i]));
        if (odd) {
          throw new Error(
            `tie: group "${g}" of pattern ${describePattern(where)} mixes shapes: "${members[0].path}" ${
              fmt(s0)
            } vs "${odd.path}" ${fmt(odd.shape)}`,
          );
        }
        // One stored tensor has one initializer: members given different ones (by an `initialize` before
        // the tie) would otherwise silently all take the first member's.
        const initOf = (l: LeafSpec) => `${l.init.name}(${JSON.stringify(l.init.args)})`;
        const oddInit = members.find((m) => initOf(m) !== initOf(members[0]));
        if (oddInit) {
          throw new Error(
            `tie: group "${g}" of pattern ${describePattern(where)} mixes initializers: "${members[0].path}" ${
              initOf(members[0])
            } vs "${oddInit.path}" ${initOf(oddInit)} (use initialize after tie to set the whole group)`,
          );
        }
      }
      const groupOf = new Map<LeafSpec, string>();
      for (const [g, members] of groups) for (const m of members) groupOf.set(m, g);
      return { ...state, leaves: state.leaves.map((l) => (groupOf.has(l) ? { ...l, group: groupOf.get(l)! } : l)) };
    },
  };
}

function setTrainable(name: "freeze" | "train", where: PathPattern, trainable: boolean): Transform {
  const match = matcher(where);
  return {
    describe: { transform: name, where: typeof where === "string" ? where : "<predicate>" },
    apply(state: Resolved): Resolved {
      const adapterHits = state.leaves.filter((l) => match(l.path));
      const baseHits = [...state.baseShapes.keys()].filter((p) => match(p));
      if (!adapterHits.length && !baseHits.length) {
        throw new Error(
          `${name}: pattern ${describePattern(where)} matches no leaf${
            examples([...state.leaves.map((l) => l.path), ...state.baseShapes.keys()])
          }`,
        );
      }
      // A tied group is one leaf: setting one member sets the group.
      const groups = new Set(adapterHits.map((l) => l.group).filter((g) => g !== null));
      const leaves = state.leaves.map((
        l,
      ) => (adapterHits.includes(l) || (l.group !== null && groups.has(l.group)) ? { ...l, trainable } : l));
      const baseTrainable = new Set(state.baseTrainable);
      for (const p of baseHits) trainable ? baseTrainable.add(p) : baseTrainable.delete(p);
      return { ...state, leaves, baseTrainable: [...baseTrainable] };
    },
  };
}

/** Marks matched leaves frozen: never differentiated, no optimizer state. The base model is frozen by default. */
export function freeze(opts: { where: PathPattern }): Transform {
  return setTrainable("freeze", opts.where, false);
}

/** Marks matched leaves trainable (adapter leaves, or base leaves such as norms). */
export function unfreeze(opts: { where: PathPattern }): Transform {
  // "train" is the name adapter.json records (kept so that saved plans read the same).
  return setTrainable("train", opts.where, true);
}

/** Sets the initializer of matched adapter leaves (for a tied group: of the whole group). */
export function initialize(opts: { where: PathPattern; with: Initializer }): Transform {
  const match = matcher(opts.where);
  const init = opts.with;
  if (!init || typeof init.fn !== "function") {
    throw new Error("initialize: with must be an initializer (e.g. initializers.normal(1), initializers.zeros)");
  }
  return {
    describe: {
      // "init" and "fn" are the names adapter.json records (kept so that saved plans read the same).
      transform: "init",
      where: typeof opts.where === "string" ? opts.where : "<predicate>",
      fn: { name: init.name, args: init.args },
    },
    apply(state: Resolved): Resolved {
      const hits = state.leaves.filter((l) => match(l.path));
      if (!hits.length) {
        throw new Error(
          `initialize: pattern ${describePattern(opts.where)} matches no adapter leaf${
            examples(state.leaves.map((l) => l.path))
          }`,
        );
      }
      const groups = new Set(hits.map((l) => l.group).filter((g) => g !== null));
      const leaves = state.leaves.map((
        l,
      ) => (hits.includes(l) || (l.group !== null && groups.has(l.group)) ? { ...l, init } : l));
      return { ...state, leaves };
    },
  };
}
