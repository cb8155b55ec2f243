/**
 * Plans: parameter-efficient fine-tuning as a composition of transforms of a
 * parameter tree. A plan is an ordered list of transforms (`adapt`, `tie`,
 * `freeze`, `train`, `init`) over a declarative table of adapter leaves; it is
 * resolved against the base model's shapes, then
 *
 * - `plan.init(base, key)` materialises `{trainable, frozen}`, each a tree
 *   `{base, tied, sites}` with `null` where the other holds the leaf;
 * - `plan.build(trainable, frozen)` returns the full model tree that the
 *   unchanged forward consumes: each site node gains its adapter leaves, and
 *   a tied leaf is the same tensor object at every site, so autodiff sums its
 *   gradients across sites with no special code (Equinox's `Shared`).
 *
 * Storage paths: an untied adapter leaf lives at `sites.<site path>.<part>`,
 * a tied group at `tied.<group>` (group names use "/" where paths use ".").
 * @module
 */
import { foldIn, type Key, Key as KeyClass } from "../core/random.ts";
import { fmt, type Shape } from "../core/shape.ts";
import type { Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import type { Initializer } from "./initializers.ts";

/** The adapter parts a site can carry: A [r, in], B [out, r], u [r], v [out]. */
export type Part = "A" | "B" | "u" | "v";

/** A site: a linear node (`{weight}`) or a fused map of sibling linears (`attn.qkv` = q|k|v). */
export interface Site {
  /** Dotted path of the site node, e.g. `layers.3.attn.qkv`. */
  path: string;
  /** Input width (columns of W). */
  in: number;
  /** Output width (rows of W; for a fused site the sum of its members'). */
  out: number;
  /** For a fused site, the sibling linear names in row order (e.g. ["q","k","v"]); else null. */
  fusedOf: string[] | null;
  /** Rows of each fused member, in order; else null. */
  outSplit: number[] | null;
}

/** One adapter leaf at one site. */
export interface LeafSpec {
  /** `<site path>.<part>`. */
  path: string;
  /** Path of the site (the linear node) this leaf adapts. */
  site: string;
  /** Which factor: A, B, u or v. */
  part: Part;
  /** Shape of the leaf. */
  shape: number[];
  /** Whether the optimizer updates it. */
  trainable: boolean;
  /** How it is drawn by `plan.init`. */
  init: Initializer;
  /** Tie group name, or null when this leaf is stored on its own. */
  group: string | null;
}

/** A plan resolved against a base model's shapes. */
export interface Resolved {
  /** The adapted sites. */
  sites: Site[];
  /** Every adapter leaf of every site. */
  leaves: LeafSpec[];
  /** Base leaves made trainable by `train` (the rest of the base is frozen). */
  baseTrainable: string[];
  /** Leaf shapes of the base model, by path. */
  baseShapes: Map<string, number[]>;
}

/** A step of a plan: a pure function of the declarative state. */
export interface Transform {
  /** What this step does, for summaries and adapter.json. */
  readonly describe: Record<string, unknown>;
  /** The state after this step. */
  apply(state: Resolved): Resolved;
}

/** `{trainable, frozen}` trees, each `{base, tied, sites}`, for a base model tree of type `B`. */
export interface PlanTrees<B extends Tree = Tree> {
  /** What the optimizer updates. */
  trainable: PlanTree<B>;
  /** What stays fixed (the base model, frozen adapter leaves such as VeRA's shared matrices). */
  frozen: PlanTree<B>;
}

/** The storage layout of a plan's leaves, for a base model tree of type `B`. */
export interface PlanTree<B extends Tree = Tree> {
  /** The base model's leaves on this side, in the base tree's structure (the other side's leaves null). */
  base: B;
  /** Tied leaves, stored once by group name (null on the side that does not hold the group). */
  tied: Record<string, Tensor | null>;
  /** Untied adapter leaves, in the base tree's structure. */
  sites: Tree;
  /** (Trees only: the layout is walked as one tree.) */
  [k: string]: Tree;
}

/**
 * The base model's tree with adapter leaves grafted on at each site. It has
 * the base tree's type: a model's layer types name the optional adapter
 * leaves (as `LlamaParams`'s `LinearParams` does with A, B, u, v), so the
 * forward takes it as it is.
 */
export type Adapted<B extends Tree> = B;

/** A composed plan. */
export interface Plan {
  /** The steps, in order. */
  readonly transforms: readonly Transform[];
  /** Extra description (preset name and options), stored in adapter.json. */
  readonly meta: Record<string, unknown>;
  /** Resolves the plan against a base tree (or a path → shape map). */
  resolve(base: Tree | Map<string, Shape>): Resolved;
  /**
   * Draws every adapter leaf (each from `foldIn(key, storage path)`, so adding a
   * site does not change the others) and splits trainable from frozen. `key`
   * defaults to the preset's `key` option.
   */
  init<B extends Tree>(base: B, key?: Key): PlanTrees<B>;
  /** The full model tree: base leaves plus each site's adapter leaves (pass it to the model's forward). */
  build<B extends Tree>(trainable: PlanTree<B>, frozen: PlanTree<B>): Adapted<B>;
}

/** Storage path of a leaf: `tied.<group>` or `sites.<leaf path>`. */
export function storagePath(leaf: LeafSpec): string {
  return leaf.group !== null ? `tied.${leaf.group}` : `sites.${leaf.path}`;
}

/** Shapes of a tree's leaves by path. */
export function shapesOf(base: Tree | Map<string, Shape>): Map<string, number[]> {
  if (base instanceof Map) return new Map([...base].map(([p, s]) => [p, [...s]]));
  return new Map(tree.entries(base).map(([p, t]) => [p, [...t.shape]]));
}

function emptyState(baseShapes: Map<string, number[]>): Resolved {
  return { sites: [], leaves: [], baseTrainable: [], baseShapes };
}

/** Sets `value` at a dotted path in a nested plain object, creating objects/arrays as needed. */
function setDeep(root: Record<string, unknown>, path: string, value: unknown): void {
  const segs = path.split(".");
  let node: Record<string, unknown> = root;
  segs.forEach((seg, i) => {
    if (i === segs.length - 1) {
      node[seg] = value;
      return;
    }
    if (node[seg] === undefined || node[seg] === null) node[seg] = /^\d+$/.test(segs[i + 1]) ? [] : {};
    node = node[seg] as Record<string, unknown>;
  });
}

/** Replaces holes left in arrays by `setDeep` with null, so trees stay walkable. */
function fillHoles(x: unknown): unknown {
  if (Array.isArray(x)) return Array.from({ length: x.length }, (_, i) => fillHoles(x[i] ?? null));
  if (x && typeof x === "object" && Object.getPrototypeOf(x) === Object.prototype) {
    for (const k of Object.keys(x)) (x as Record<string, unknown>)[k] = fillHoles((x as Record<string, unknown>)[k]);
  }
  return x;
}

/** Composes transforms (or other plans, flattened) into a plan. */
export function compose(...steps: (Transform | Plan)[]): Plan {
  const transforms = steps.flatMap((s) => ("transforms" in s ? s.transforms : [s]));
  // Keep the metadata of the plans composed (e.g. a preset's key); a preset with
  // more steps is no longer that preset, so its name moves to `basedOn`.
  const meta: Record<string, unknown> = Object.assign({}, ...steps.map((s) => ("transforms" in s ? s.meta : {})));
  if (meta.preset && steps.length > 1) {
    meta.basedOn = meta.preset;
    delete meta.preset;
  }
  return makePlan(transforms, meta);
}

/** A plan with metadata (used by presets: name and options go to adapter.json). */
export function withMeta(plan: Plan, meta: Record<string, unknown>): Plan {
  return makePlan(plan.transforms, { ...plan.meta, ...meta });
}

function makePlan(transforms: readonly Transform[], meta: Record<string, unknown>): Plan {
  const cache = new WeakMap<object, Resolved>();
  const builtCache = new WeakMap<object, Resolved>();
  const resolve = (base: Tree | Map<string, Shape>): Resolved => {
    const cached = base && typeof base === "object" ? cache.get(base) : undefined;
    if (cached) return cached;
    let state = emptyState(shapesOf(base));
    for (const t of transforms) state = t.apply(state);
    // A tied group is stored once: its members must agree on trainability.
    const groups = new Map<string, LeafSpec[]>();
    for (const l of state.leaves) if (l.group !== null) groups.set(l.group, [...(groups.get(l.group) ?? []), l]);
    for (const [g, members] of groups) {
      if (new Set(members.map((m) => m.trainable)).size > 1) {
        throw new Error(
          `plan: tied group "${g}" mixes trainable and frozen leaves (${members.map((m) => m.path).join(", ")})`,
        );
      }
    }
    if (base && typeof base === "object") cache.set(base, state);
    return state;
  };
  const plan: Plan = {
    transforms,
    meta,
    resolve,
    init<B extends Tree>(base: B, key?: Key): PlanTrees<B> {
      const stored = meta.key as [number, number] | undefined;
      key ??= stored ? new KeyClass(stored[0], stored[1]) : undefined;
      if (!key) throw new Error("plan.init: needs a PRNG key (plan.init(base, key(0)), or the preset's key option)");
      const r = resolve(base);
      const trainable = { base: null, tied: {}, sites: null } as unknown as PlanTree<B>;
      const frozen = { base: null, tied: {}, sites: null } as unknown as PlanTree<B>;
      const trainableBase = new Set(r.baseTrainable);
      [trainable.base, frozen.base] = tree.partition(base, (p) => trainableBase.has(p));
      const sitesT: Record<string, unknown> = {}, sitesF: Record<string, unknown> = {};
      const drawn = new Map<string, Tensor>();
      for (const leaf of r.leaves) {
        const sp = storagePath(leaf);
        if (!drawn.has(sp)) drawn.set(sp, leaf.init.fn(foldIn(key, sp), leaf.shape));
        const value = drawn.get(sp)!;
        if (leaf.group !== null) {
          (leaf.trainable ? trainable : frozen).tied[leaf.group] = value;
          (leaf.trainable ? frozen : trainable).tied[leaf.group] ??= null;
        } else {
          setDeep(leaf.trainable ? sitesT : sitesF, leaf.path, value);
        }
      }
      trainable.sites = fillHoles(sitesT) as Tree;
      frozen.sites = fillHoles(sitesF) as Tree;
      return { trainable, frozen };
    },
    build<B extends Tree>(trainable: PlanTree<B>, frozen: PlanTree<B>): Adapted<B> {
      checkPlanTree("build", trainable, "trainable");
      checkPlanTree("build", frozen, "frozen");
      const base = tree.combine(trainable.base, frozen.base);
      // Resolve once per frozen tree (it persists across training steps; `base` is rebuilt each call).
      let r = builtCache.get(frozen);
      if (!r) builtCache.set(frozen, r = resolve(base));
      const tied = { ...frozen.tied, ...Object.fromEntries(Object.entries(trainable.tied).filter(([, v]) => v)) };
      const siteLeaves = new Map([...tree.entries(frozen.sites), ...tree.entries(trainable.sites)]);
      // Gather each site's adapter leaves, then graft them onto a copy of the base tree.
      const bySite = new Map<string, Record<string, Tensor>>();
      for (const leaf of r.leaves) {
        const value = leaf.group !== null ? tied[leaf.group] : siteLeaves.get(leaf.path);
        if (!value) {
          throw new Error(`plan.build: no value for adapter leaf "${leaf.path}" (stored at ${storagePath(leaf)})`);
        }
        if (value.shape.length !== leaf.shape.length || value.shape.some((d, i) => d !== leaf.shape[i])) {
          throw new Error(
            `plan.build: "${storagePath(leaf)}" has shape ${fmt(value.shape)}, the plan expects ${fmt(leaf.shape)}`,
          );
        }
        bySite.set(leaf.site, { ...(bySite.get(leaf.site) ?? {}), [leaf.part]: value });
      }
      let out = base;
      for (const site of r.sites) {
        const parts = bySite.get(site.path) ?? {};
        if (site.fusedOf) {
          const parent = site.path.split(".").slice(0, -1).join(".");
          const name = site.path.split(".").at(-1)!;
          const node = tree.at(out, parent) as Record<string, Tree>;
          out = tree.set(out, parent, { ...node, [name]: parts });
        } else {
          const node = tree.at(out, site.path) as Record<string, Tree>;
          out = tree.set(out, site.path, { ...node, ...parts });
        }
      }
      return out;
    },
  };
  return plan;
}

function checkPlanTree(op: string, t: PlanTree, name: string): void {
  if (!t || typeof t !== "object" || !("base" in t) || !("tied" in t) || !("sites" in t)) {
    throw new Error(`plan.${op}: ${name} must be a {base, tied, sites} tree as returned by plan.init`);
  }
}
