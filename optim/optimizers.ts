/**
 * `sgd`, `adamw` (decoupled weight decay, bias correction), `clipByGlobalNorm`
 * and the schedules `constant` and `cosineWithWarmup`.
 * @module
 */
import { add, div, maximum, mul, sqrt, square } from "../core/ops/elementwise.ts";
import { sum } from "../core/ops/reduce.ts";
import { zerosLike } from "../core/ops/creation.ts";
import type { Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { type GradientTransformation, mapLeaves, type OptState, type Schedule, scheduleAt } from "./transform.ts";

/** A constant learning rate. */
export function constant(lr: number): (step: number) => number {
  return () => lr;
}

/**
 * Linear warm-up from 0 to `peak` over `warmupSteps`, then cosine decay to
 * `minLr` at `totalSteps` (and `minLr` after).
 */
export function cosineWithWarmup(
  peak: number,
  warmupSteps: number,
  totalSteps: number,
  minLr = 0,
): (step: number) => number {
  if (!(totalSteps > 0) || warmupSteps < 0) {
    throw new Error(`cosineWithWarmup: need totalSteps > 0 and warmupSteps >= 0, got ${totalSteps}, ${warmupSteps}`);
  }
  return (step: number) => {
    if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
    const t = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return minLr + 0.5 * (peak - minLr) * (1 + Math.cos(Math.PI * t));
  };
}

/** Plain (optionally momentum) SGD: updates = −lr·(g + momentum·buffer). */
export function sgd(lr: Schedule, opts: { momentum?: number } = {}): GradientTransformation {
  const { momentum = 0 } = opts;
  return {
    init: (params) => ({ count: 0, ...(momentum ? { trace: tree.map(params, (p) => zerosLike(p)) } : {}) }),
    update<T extends Tree>(grads: T, state: OptState) {
      const s = state as { count: number; trace?: Tree };
      const rate = scheduleAt(lr, s.count);
      if (!momentum) return { updates: mapLeaves(([g]) => mul(g, -rate), grads), state: { count: s.count + 1 } };
      const trace: T = mapLeaves(([g, t]) => add(g, mul(t, momentum)), grads, s.trace!);
      return { updates: mapLeaves(([t]) => mul(t, -rate), trace), state: { count: s.count + 1, trace } };
    },
  };
}

/** Options of {@link adamw}. */
export interface AdamWOptions {
  b1?: number;
  b2?: number;
  eps?: number;
  /** Decoupled weight decay coefficient (multiplied by the learning rate, as in PyTorch's AdamW). */
  weightDecay?: number;
}

/**
 * AdamW (Loshchilov & Hutter): Adam with bias correction, plus decoupled
 * weight decay −lr·wd·param. Defaults b1 0.9, b2 0.999, eps 1e-8, wd 0.01.
 */
export function adamw(lr: Schedule, opts: AdamWOptions = {}): GradientTransformation {
  const { b1 = 0.9, b2 = 0.999, eps = 1e-8, weightDecay = 0.01 } = opts;
  return {
    init: (params) => ({
      count: 0,
      mu: tree.map(params, (p) => zerosLike(p)),
      nu: tree.map(params, (p) => zerosLike(p)),
    }),
    update<T extends Tree>(grads: T, state: OptState, params?: Tree) {
      const s = state as { count: number; mu: Tree; nu: Tree };
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
export function clipByGlobalNorm(maxNorm: number): GradientTransformation {
  return {
    init: () => ({}),
    update<T extends Tree>(grads: T, state: OptState) {
      const norm = globalNorm(grads);
      const scale = div(maxNorm, maximum(norm, maxNorm));
      return { updates: mapLeaves(([g]) => mul(g, scale), grads), state: state as OptState };
    },
  };
}
