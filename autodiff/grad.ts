/**
 * Reverse-mode autodiff as function transforms, with JAX's signatures:
 * `grad`, `valueAndGrad`, `vjp`, `stopGradient`. Inputs and gradients are
 * trees of the same structure. Each differentiated leaf is replaced by a
 * fresh alias before `f` runs, so a tensor reused at several places in `f`
 * gets the sum of its contributions (weight tying rests on this), while the
 * same tensor passed at two input positions gets one gradient per position.
 * @module
 */
import { scope } from "../core/scope.ts";
import { backward, record, Tape, tapes } from "../core/tape.ts";
import { alias, isTensor, type Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { add } from "../core/ops/elementwise.ts";
import { vjpRules } from "./vjp_rules.ts";
import { full, zerosLike } from "../core/ops/creation.ts";
import { fmt } from "../core/shape.ts";

/** Which positional argument(s) to differentiate: one index, or a tuple of them. */
export type Argnums = number | readonly number[];

/** Options of {@link grad} and {@link valueAndGrad}. */
export interface GradOptions<N extends Argnums = Argnums, H extends boolean = boolean> {
  /** Which positional argument(s) to differentiate (default 0). An array returns a tuple of gradients. */
  argnums?: N;
  /** `f` returns `[value, aux]`; aux is returned alongside, not differentiated. */
  hasAux?: H;
}

/**
 * A function that can be differentiated: any arguments (trees of tensors at
 * the differentiated positions). Unannotated parameters are read as tensors
 * (the first overload of {@link grad}); annotate tree parameters
 * (`(p: LlamaParams, batch: LmBatch) => …`) and the gradient has their type.
 */
export type Differentiable = (...args: never[]) => unknown;

/**
 * The gradient of an argument of type `T`: a tree of the same structure and
 * type, a tensor of the leaf's shape at each tensor leaf (as `jax.grad`).
 */
export type GradOf<T> = T;

/** The gradients for `argnums` `N` of arguments `P`: one tree, or a tuple of trees for a tuple of indices. */
export type GradsAt<P extends readonly unknown[], N> = N extends number ? GradOf<P[N]>
  : N extends readonly number[] ? { -readonly [K in keyof N]: GradOf<P[N[K] & number]> }
  : never;

/** The aux part of `[value, aux]`. */
export type AuxOf<R> = R extends readonly [unknown, infer A] ? A : never;

/** What {@link grad} returns for `f`, `argnums` `N` and `hasAux` `H`. */
export type GradFn<F extends Differentiable, N, H> = (
  ...args: Parameters<F>
) => H extends true ? [GradsAt<Parameters<F>, N>, AuxOf<ReturnType<F>>] : GradsAt<Parameters<F>, N>;

/** What {@link valueAndGrad} returns for `f`, `argnums` `N` and `hasAux` `H`. */
export type ValueAndGradFn<F extends Differentiable, N, H> = (
  ...args: Parameters<F>
) => H extends true ? [Tensor, GradsAt<Parameters<F>, N>, AuxOf<ReturnType<F>>] : [Tensor, GradsAt<Parameters<F>, N>];

/** `f` called with arguments that its type does not name (the tracked aliases). */
function callUntyped(f: Differentiable, args: unknown[]): unknown {
  return (f as (...a: unknown[]) => unknown)(...args);
}

/** Replaces the float leaves of argument trees by tracked aliases. */
function trackArgs(op: string, tape: Tape, args: unknown[], nums: readonly number[]): unknown[] {
  const out = args.slice();
  for (const n of nums) {
    if (!Number.isInteger(n) || n < 0 || n >= args.length) {
      throw new Error(`${op}: argnums ${n} is out of range for ${args.length} argument(s)`);
    }
    out[n] = tree.map(args[n] as Tree, (leaf, path) => {
      if (leaf.dtype !== "float32") {
        throw new Error(
          `${op}: argument ${n} leaf "${path}" is ${leaf.dtype}; only float32 leaves can be differentiated (pass it in another argument)`,
        );
      }
      const a = alias(leaf);
      // Recorded as an identity on any outer tape, so gradients of gradients flow.
      record("alias", {}, [leaf], a);
      tape.tracked.add(a);
      return a;
    });
  }
  return out;
}

function gradTree(tracked: unknown, cts: Map<Tensor, Tensor>): unknown {
  return tree.map(tracked as Tree, (a) => cts.get(a) ?? zerosLike(a));
}

/**
 * Transforms `f` into a function returning `[f(...args), ∂f/∂args[argnums]]`.
 * `f` must return a float32 scalar (or `[scalar, aux]` with `hasAux`).
 * @example
 * const [loss, g] = valueAndGrad((w) => sum(square(w)))(tensor([1, 2])); // g = [2, 4]
 */
export function valueAndGrad<
  F extends (...args: Tensor[]) => unknown,
  const N extends Argnums = 0,
  H extends boolean = false,
>(
  f: F,
  opts?: GradOptions<N, H>,
): ValueAndGradFn<F, N, H>;
/**
 * {@link valueAndGrad} of a function of trees: annotate its parameters
 * (`(p: LlamaParams, batch: LmBatch) => …`) and the gradients have their types.
 */
export function valueAndGrad<F extends Differentiable, const N extends Argnums = 0, H extends boolean = false>(
  f: F,
  opts?: GradOptions<N, H>,
): ValueAndGradFn<F, N, H>;
export function valueAndGrad<F extends Differentiable, const N extends Argnums = 0, H extends boolean = false>(
  f: F,
  opts: GradOptions<N, H> = {},
): ValueAndGradFn<F, N, H> {
  const { argnums = 0, hasAux = false } = opts;
  const nums: readonly number[] = typeof argnums === "number" ? [argnums] : argnums;
  return ((...args: unknown[]) =>
    scope(() => {
      const tape = new Tape();
      const targs = trackArgs("valueAndGrad", tape, args, nums);
      tapes.push(tape);
      let out: unknown;
      try {
        out = callUntyped(f, targs);
      } finally {
        tapes.splice(tapes.lastIndexOf(tape), 1);
      }
      const [value, aux] = hasAux ? (Array.isArray(out) && out.length === 2 ? out : badAux(out)) : [out, undefined];
      if (!isTensor(value) || value.size !== 1 || value.rank !== 0 || value.dtype !== "float32") {
        throw new Error(
          `grad: the function must return a float32 scalar (shape []), got ${
            isTensor(value) ? `${value.dtype} ${fmt(value.shape)}` : typeof value
          }` +
            (isTensor(value) && value.rank > 0 ? " (reduce it with sum or mean, or use vjp)" : ""),
        );
      }
      const seed = full([], 1);
      const tracked = nums.map((n) => targs[n]);
      const keepSet = new Set(tracked.flatMap((t) => tree.leaves(t)));
      const cts = tape.tracked.has(value) ? backward(tape, [value], [seed], vjpRules, add, keepSet) : new Map();
      const grads = tracked.map((t) => gradTree(t, cts));
      const g = typeof argnums === "number" ? grads[0] : grads;
      return hasAux ? [value, g, aux] : [value, g];
    })) as unknown as ValueAndGradFn<F, N, H>;
}

function badAux(out: unknown): never {
  throw new Error(`valueAndGrad: with hasAux the function must return [value, aux], got ${typeof out}`);
}

/**
 * Transforms `f` into a function returning the gradient of its scalar output
 * with respect to argument `argnums` (default 0), a tree shaped like that argument.
 * With `hasAux`, returns `[grad, aux]`.
 */
export function grad<F extends (...args: Tensor[]) => unknown, const N extends Argnums = 0, H extends boolean = false>(
  f: F,
  opts?: GradOptions<N, H>,
): GradFn<F, N, H>;
/**
 * {@link grad} of a function of trees: annotate its parameters
 * (`(p: LlamaParams, batch: LmBatch) => …`) and the gradient has their type.
 */
export function grad<F extends Differentiable, const N extends Argnums = 0, H extends boolean = false>(
  f: F,
  opts?: GradOptions<N, H>,
): GradFn<F, N, H>;
export function grad<F extends Differentiable, const N extends Argnums = 0, H extends boolean = false>(
  f: F,
  opts: GradOptions<N, H> = {},
): GradFn<F, N, H> {
  const vg = valueAndGrad(f, opts) as unknown as (...a: unknown[]) => [Tensor, unknown, unknown?];
  return ((...args: unknown[]) => {
    const [value, g, aux] = vg(...args);
    value.dispose();
    return opts.hasAux ? [g, aux] : g;
  }) as unknown as GradFn<F, N, H>;
}

/**
 * Evaluates `f(...primals)` and returns `[out, vjpFn]`, where
 * `vjpFn(cotangent)` gives the tuple of cotangents for every primal (trees
 * like the primals). `cotangent` is shaped like `out` (a tensor or tree).
 * The recording is kept until `vjpFn` is garbage-collected.
 */
export function vjp<F extends Differentiable>(
  f: F,
  ...primals: Parameters<F>
): [ReturnType<F>, (cotangent: Tree) => { -readonly [K in keyof Parameters<F>]: GradOf<Parameters<F>[K]> }] {
  const tape = new Tape();
  const targs = trackArgs("vjp", tape, primals, primals.map((_, i) => i));
  tapes.push(tape);
  let out: ReturnType<F>;
  try {
    out = callUntyped(f, targs) as ReturnType<F>;
  } finally {
    tapes.splice(tapes.lastIndexOf(tape), 1);
  }
  const outLeaves = tree.leaves(out);
  const keepSet = new Set(targs.flatMap((t) => tree.leaves(t)));
  const vjpFn = (cotangent: Tree) =>
    scope(() => {
      const seeds = tree.leaves(cotangent);
      if (seeds.length !== outLeaves.length) {
        throw new Error(`vjp: cotangent has ${seeds.length} leaves, the output has ${outLeaves.length}`);
      }
      seeds.forEach((s, i) => {
        const o = outLeaves[i];
        if (s.shape.length !== o.shape.length || s.shape.some((d, k) => d !== o.shape[k])) {
          throw new Error(`vjp: cotangent leaf ${i} has shape ${fmt(s.shape)}, output has ${fmt(o.shape)}`);
        }
      });
      const pairs = outLeaves.map((o, i) => [o, seeds[i]] as const).filter(([o]) => tape.tracked.has(o));
      const cts = backward(tape, pairs.map((p) => p[0]), pairs.map((p) => p[1]), vjpRules, add, keepSet);
      return targs.map((t) => gradTree(t, cts)) as { -readonly [K in keyof Parameters<F>]: GradOf<Parameters<F>[K]> };
    });
  return [out, vjpFn];
}

/** `x` itself in value, but constant to autodiff: no gradient flows through it. */
export function stopGradient<T extends Tree>(x: T): T {
  return tree.map(x, (t) => alias(t));
}
