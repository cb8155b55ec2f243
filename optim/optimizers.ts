/**
 * `sgd`, `adamw` (decoupled weight decay, bias correction) and
 * `clipByGlobalNorm`, each with its typed state (as Optax's
 * `ScaleByAdamState`). Schedules are in schedules.ts.
 * @module
 */
import { add, cast, div, equal, exp, less, log, maximum, mul } from "../core/ops/elementwise.ts";
import { neg, sqrt, square, sub, where } from "../core/ops/elementwise.ts";
import { sum } from "../core/ops/reduce.ts";
import { zeros, zerosLike } from "../core/ops/creation.ts";
import type { Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { countOf, type GradientTransformation, mapLeaves, type Schedule, scheduleAt } from "./transform.ts";

/** The state of {@link sgd}: the step count (int32 scalar), and the momentum buffer when momentum is on. */
export type SgdState = { count: Tensor; trace?: Tree };

/** The state of {@link adamw} (Optax's `ScaleByAdamState`): step count (int32 scalar), first and second moments. */
export type AdamWState = { count: Tensor; mu: Tree; nu: Tree };

/** −rate, for a number or a scalar tensor. */
const negated = (rate: Tensor | number) => typeof rate === "number" ? -rate : neg(rate);

/**
 * 1 − bᵗ for a float32 scalar t ≥ 1, as −expm1(t·ln b) with Kahan's expm1 from exp and log
 * ((u − 1)·x / ln u, u = eˣ): computing bᵗ in float32 and subtracting loses up to 1e-4 of the
 * result at b = 0.999, t = 1; this stays within a few ulp of the float64 value.
 */
export function oneMinusPow(b: number, t: Tensor): Tensor | number {
  if (b === 0) return 1;
  const x = mul(t, Math.log(b)), u = exp(x);
  const expm1 = where(equal(u, 1), x, div(mul(sub(u, 1), x), log(u)));
  return neg(where(less(u, 2 ** -24), -1, expm1)); // e^x below float32's 1 − ulp/2: ln u would be inexact (denormal)
}

/** The state of {@link clipByGlobalNorm}: none. */
export type ClipByGlobalNormState = Record<string, never>;

/** Plain (optionally momentum) SGD: updates = −lr·(g + momentum·buffer). */
export function sgd(lr: Schedule, opts: { momentum?: number } = {}): GradientTransformation<SgdState> {
  const { momentum = 0 } = opts;
  return {
    init: (params) => ({ count: zeros([], "int32"), ...(momentum ? { trace: tree.map(params, zerosLike) } : {}) }),
    update<T extends Tree>(grads: T, s: SgdState) {
      const count = countOf(s.count, "sgd.update");
      const rate = negated(scheduleAt(lr, count));
      if (!momentum) return { updates: mapLeaves(([g]) => mul(g, rate), grads), state: { count: add(count, 1) } };
      const trace: T = mapLeaves(([g, t]) => add(g, mul(t, momentum)), grads, s.trace!);
      return { updates: mapLeaves(([t]) => mul(t, rate), trace), state: { count: add(count, 1), trace } };
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
      count: zeros([], "int32"),
      mu: tree.map(params, (p) => zerosLike(p)),
      nu: tree.map(params, (p) => zerosLike(p)),
    }),
    update<T extends Tree>(grads: T, s: AdamWState, params?: Tree) {
      if (weightDecay && !params) {
        throw new Error("adamw.update: weight decay needs the params (update(grads, state, params))");
      }
      const count = countOf(s.count, "adamw.update");
      const rate = negated(scheduleAt(lr, count));
      const mu: T = mapLeaves(([g, m]) => add(mul(m, b1), mul(g, 1 - b1)), grads, s.mu);
      const nu: T = mapLeaves(([g, v]) => add(mul(v, b2), mul(square(g), 1 - b2)), grads, s.nu);
      const step = add(count, 1), t = cast(step, "float32");
      const c1 = oneMinusPow(b1, t), c2 = oneMinusPow(b2, t);
      const updates = mapLeaves(
        ([m, v], path) => {
          const adam = div(div(m, c1), add(sqrt(div(v, c2)), eps));
          const p = weightDecay ? (tree.at(params!, path) as Tensor) : null;
          return mul(p ? add(adam, mul(p, weightDecay)) : adam, rate);
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
