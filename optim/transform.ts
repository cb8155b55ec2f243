/**
 * Optimizers as Optax-style gradient transformations: `{init(params),
 * update(grads, state, params) → {updates, state}}`, composed with `chain`.
 * State exists only for tensor leaves of the (trainable) tree, so a tied
 * leaf, stored once, has one state. Updates are added with `applyUpdates`.
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { add } from "../core/ops/elementwise.ts";

/** A learning rate: a constant, or a schedule of the step count (0-based). */
export type Schedule = number | ((step: number) => number);

/** Optimizer state: tensor trees plus plain numbers (step counts). Serialisable by train/checkpoint. */
export type OptState = { [k: string]: Tree | number | OptState | OptState[] } | OptState[];

/**
 * A gradient transformation with state `S` (Optax's `GradientTransformation`):
 * `adamw` carries an {@link AdamWState} (`optim/optimizers.ts`), `chain` the tuple of its
 * parts' states.
 */
export interface GradientTransformation<S extends OptState = OptState> {
  /** A fresh state for these parameters. */
  init(params: Tree): S;
  /** Turns gradients into updates (to be added to the parameters) and a new state. */
  update<T extends Tree>(grads: T, state: S, params?: Tree): { updates: T; state: S };
}

/** The state type of a gradient transformation. */
export type StateOf<G> = G extends GradientTransformation<infer S> ? S : never;

/** The value of a schedule at `step`. */
export function scheduleAt(s: Schedule, step: number): number {
  return typeof s === "number" ? s : s(step);
}

/** params + updates, leafwise (leaves absent from `updates` — null — are kept). */
export function applyUpdates<T extends Tree>(params: T, updates: Tree): T {
  const u = new Map(tree.entries(updates));
  return tree.map(params, (p, path) => {
    const d = u.get(path);
    return d ? add(p, d) : p;
  });
}

/**
 * Applies transformations in sequence, each to the previous one's updates
 * (Optax's `chain`). Its state is the tuple of their states, typed.
 */
export function chain<const Ts extends readonly GradientTransformation<OptState>[]>(
  ...ts: Ts
): GradientTransformation<{ -readonly [K in keyof Ts]: StateOf<Ts[K]> }> {
  type S = { -readonly [K in keyof Ts]: StateOf<Ts[K]> };
  // The parts' states are held as one array; each part gets its own (typed by S for callers).
  const parts = ts as readonly GradientTransformation<OptState>[];
  return {
    init: (params) => parts.map((t) => t.init(params)) as unknown as S,
    update<T extends Tree>(grads: T, state: S, params?: Tree) {
      const states = state as unknown as OptState[];
      if (!Array.isArray(states) || states.length !== ts.length) {
        throw new Error(
          `chain.update: state has ${Array.isArray(states) ? states.length : "no"} parts, the chain has ${ts.length}`,
        );
      }
      let updates: T = grads;
      const next: OptState[] = [];
      parts.forEach((t, i) => {
        const r = t.update(updates, states[i], params);
        updates = r.updates;
        next.push(r.state);
      });
      return { updates, state: next as unknown as S };
    },
  };
}

/** Leafwise map over trees of one structure (all-tensor positions only). */
export function mapLeaves<T extends Tree>(
  fn: (leaves: Tensor[], path: string) => Tensor,
  first: T,
  ...rest: Tree[]
): T {
  return tree.zipMap((ls, p) => fn(ls, p), first, ...rest);
}
