/**
 * Optimizers as Optax-style gradient transformations: `{init(params),
 * update(grads, state, params) → {updates, state}}`, composed with `chain`.
 * State exists only for tensor leaves of the (trainable) tree, so a tied
 * leaf, stored once, has one state. Updates are added with `applyUpdates`.
 * @module
 */
import { isTensor, type Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { add, cast } from "../core/ops/elementwise.ts";
import { tensor } from "../core/ops/creation.ts";

/**
 * A learning rate: a constant, or a schedule: a function of the 0-based step, a float32 scalar
 * tensor, written with tensor ops (as Optax's), so a jitted step traces once for every step.
 * A schedule that treats its step as a JavaScript number (`step < 100`, `Math.cos(step)`) gets
 * an Error, jitted or not; `optim.schedules` has the usual ones.
 * @example
 * ```ts
 * import { add, div, minimum, mul, optim, type Tensor } from "../mod.ts";
 * const warmup = (step: Tensor) => mul(3e-4, minimum(1, div(add(step, 1), 100))); // linear over 100 steps
 * const opt = optim.adamw(warmup);
 * ```
 */
export type Schedule = number | ((step: Tensor) => Tensor | number);

/** Optimizer state: tensor trees (step counts are int32 scalars) and plain values. Serialisable by train/checkpoint. */
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

/**
 * A step count as an int32 scalar tensor. A plain number is a count from a state saved before
 * counts were tensors (a v2 checkpoint): it is taken as it is.
 */
export function countOf(count: Tensor | number, name: string): Tensor {
  if (isTensor(count) && count.dtype === "int32" && count.rank === 0) return count;
  if (typeof count === "number" && Number.isInteger(count) && count >= 0) return tensor(count, [], "int32");
  throw new Error(`${name}: state.count must be an int32 scalar tensor (the step count), got ${describe(count)}`);
}

function describe(x: unknown): string {
  return isTensor(x) ? `${x.dtype} [${x.shape.join(", ")}]` : JSON.stringify(x) ?? typeof x;
}

/**
 * The learning rate at step `count` (an int32 scalar): a number as it is, a schedule evaluated
 * on the step as float32. The step refuses to become a JavaScript number, as a JAX tracer does:
 * a schedule written for numbers (`step < 100 ? …`) would otherwise compute garbage silently.
 */
export function scheduleAt(s: Schedule, count: Tensor): Tensor | number {
  if (typeof s === "number") return s;
  const step = cast(count, "float32");
  const refuse = () => {
    throw new Error(
      "optim: the learning-rate schedule used its step as a JavaScript number; the step is a float32 scalar tensor " +
        "(so a jitted step traces once): write it with tensor ops, e.g. (step) => mul(1e-3, minimum(1, div(step, 100)))",
    );
  };
  Object.defineProperty(step, Symbol.toPrimitive, { value: refuse });
  const lr = s(step);
  if (isTensor(lr) ? lr.rank === 0 && lr.dtype === "float32" : Number.isFinite(lr)) return lr;
  throw new Error(`optim: a schedule must return a float32 scalar tensor or a finite number, got ${describe(lr)}`);
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
