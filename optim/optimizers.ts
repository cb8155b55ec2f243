/**
 * `sgd`, `adamw` (decoupled weight decay, bias correction) and
 * `clipByGlobalNorm`, each with its typed state (as Optax's
 * `ScaleByAdamState`). Schedules are in schedules.ts.
 * @module
 */
import { add, div, maximum, mul, sqrt, square } from "../core/ops/elementwise.ts";
import { sum } from "../core/ops/reduce.ts";
import { zerosLike } from "../core/ops/creation.ts";
import type { Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { type GradientTransformation, mapLeaves, type Schedule, scheduleAt } from "./transform.ts";

/** The state of {@link sgd}: the step count, and the momentum buffer when momentum is on. */
export type SgdState = { count: number; trace?: Tree };

/** The state of {@link adamw} (Optax's `ScaleByAdamState`): step count, first and second moments. */
export type AdamWState = { count: number; mu: Tree; nu: Tree };

/** The state of {@link clipByGlobalNorm}: none. */
export type ClipByGlobalNormState = Record<string, never>;

/** Plain (optionally momentum) SGD: updates = −lr·(g + momentum·buffer). */
export function sgd(lr: Schedule, opts: { momentum?: number } = {}): GradientTransformation<SgdState> {
  const { momentum = 0 } = opts;
  return {
    init: (params) => ({ count: 0, ...(momentum ? { trace: tree.map(params, (p) => zerosLike(p)) } : {}) }),
    update<T extends Tree>(grads: T, s: SgdState) {
      const rate = scheduleAt(lr, s.count);
      if (!momentum) return { updates: mapLeaves(([g]) => mul(g, -rate), grads), state: { count: s.count + 1 } };
      const trace: T = mapLeaves(([g, t]) => add(g, mul(t, momentum)), grads, s.trace!);
      return { updates: mapLeaves(([t]) => mul(t, -rate), trace), state: { count: s.count + 1, trace } };
    },
  };
}

/** Options of {@link adamw}. */
export interface AdamWOptions {
  /** Decay of the first moment (default 0.9). */
  b1?: number;
  /** Decay of the second moment (default 0.999). */
  b2?: number;
  /** Added to the root of the second moment (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay coefficient (multiplied by the learning rate, as in PyTorch's AdamW). */
  weightDecay?: number;
}

/**
 * AdamW (Loshchilov & Hutter): Adam with bias correction, plus decoupled
 * weight decay −lr·wd·param. Defaults b1 0.9, b2 0.999, eps 1e-8, wd 0.01.
 */
export function adamw(lr: Schedule, opts: AdamWOptions = {}): GradientTransformation<AdamWState> {
  const { b1 = 0.9, b2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = opts;
  return {
    init: (params) => ({
      count: 0,
      mu: tree.map(params, (p) => zerosLike(p)),
      nu: tree.map(params, (p) => zerosLike(p)),
    }),
    update<T extends Tree>(grads: T, s: AdamWState, params?: Tree) {
      if (weightDecay && !params) {
        throw new Error("adamw.update: weight decay needs the params (update(grads, state, params))");
      }
      const step = s.count + 1;
      const rate = scheduleAt(lr, s.count);
      const mu: T = mapLeaves(([g, m]) => add(mul(m, b1), mul(g, 1 - b1)), grads, s.mu);
      const nu: T = mapLeaves(([g, v]) => add(mul(v, b2), mul(square(g), 1 - b2)), grads, s.nu);
      const c1 = 1 - b1 ** step, c2 = 1 - b2 ** step;
      const updates = mapLeaves(
        ([m, v], path) => {
          const adam = div(div(m, c1), add(sqrt(div(v, c2)), eps));
          const p = weightDecay ? (tree.at(params!, path) as Tensor) : null;
          return mul(p ? add(adam, mul(p, weightDecay)) : adam, -rate);
        },
        mu,
        nu,
      );
      return { updates, state: { count: step, mu, nu } };
    },
  };
}

/** The global L2 norm of all leaves of a tree (a scalar tensor). */
export function globalNorm(t: Tree): Tensor {
  const squares = tree.leaves(t).map((g) => sum(square(g)));
  if (!squares.length) throw new Error("globalNorm: the tree has no leaves");
  return sqrt(squares.reduce((a, b) => add(a, b)));
}

/** Scales all updates by min(1, maxNorm / globalNorm) (Optax's `clip_by_global_norm`). */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<ClipByGlobalNormState> {
  return {
    init: () => ({}),
    update<T extends Tree>(grads: T, state: ClipByGlobalNormState) {
      const norm = globalNorm(grads);
      const scale = div(maxNorm, maximum(norm, maxNorm));
      return { updates: mapLeaves(([g]) => mul(g, scale), grads), state };
    },
  };
}
