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
import { full, zerosLike } from "../core/ops/creation.ts";
import { fmt } from "../core/shape.ts";

/** Options of {@link grad} and {@link valueAndGrad}. */
export interface GradOptions {
  /** Which positional argument(s) to differentiate (default 0). An array returns a tuple of gradients. */
  argnums?: number | readonly number[];
  /** `f` returns `[value, aux]`; aux is returned alongside, not differentiated. */
  hasAux?: boolean;
}

/**
 * A gradient tree, shaped like the differentiated argument (or a tuple of
 * them with an `argnums` array). Typed loosely because TypeScript cannot map
 * an argument's type to its gradient's.
 */
// deno-lint-ignore no-explicit-any
export type GradTree = any;

type Fn = (...args: GradTree[]) => GradTree;

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
      record([leaf], a, (g) => [g]);
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
export function valueAndGrad<F extends Fn>(
  f: F,
  opts: GradOptions = {},
): (...args: Parameters<F>) => [Tensor, GradTree, GradTree?] {
  const { argnums = 0, hasAux = false } = opts;
  const nums = typeof argnums === "number" ? [argnums] : argnums;
  return (...args: Parameters<F>): [Tensor, GradTree, GradTree?] =>
    scope(() => {
      const tape = new Tape();
      const targs = trackArgs("valueAndGrad", tape, args, nums);
      tapes.push(tape);
      let out: unknown;
      try {
        out = f(...targs);
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
      const cts = tape.tracked.has(value) ? backward(tape, [value], [seed], add, keepSet) : new Map();
      const grads = tracked.map((t) => gradTree(t, cts));
      const g = typeof argnums === "number" ? grads[0] : grads;
      return hasAux ? [value, g, aux] : [value, g];
    }) as [Tensor, unknown, unknown?];
}

function badAux(out: unknown): never {
  throw new Error(`valueAndGrad: with hasAux the function must return [value, aux], got ${typeof out}`);
}

/**
 * Transforms `f` into a function returning the gradient of its scalar output
 * with respect to argument `argnums` (default 0), a tree shaped like that argument.
 * With `hasAux`, returns `[grad, aux]`.
 */
export function grad<F extends Fn>(f: F, opts: GradOptions = {}): (...args: Parameters<F>) => GradTree {
  const vg = valueAndGrad(f, opts);
  return (...args: Parameters<F>): GradTree => {
    const [value, g, aux] = vg(...args);
    value.dispose();
    return opts.hasAux ? [g, aux] : g;
  };
}

/**
 * Evaluates `f(...primals)` and returns `[out, vjpFn]`, where
 * `vjpFn(cotangent)` gives the tuple of cotangents for every primal (trees
 * like the primals). `cotangent` is shaped like `out` (a tensor or tree).
 * The recording is kept until `vjpFn` is garbage-collected.
 */
export function vjp<F extends Fn>(
  f: F,
  ...primals: Parameters<F>
): [ReturnType<F>, (cotangent: GradTree) => GradTree[]] {
  const tape = new Tape();
  const targs = trackArgs("vjp", tape, primals, primals.map((_, i) => i));
  tapes.push(tape);
  let out: ReturnType<F>;
  try {
    out = f(...targs);
  } finally {
    tapes.splice(tapes.lastIndexOf(tape), 1);
  }
  const outLeaves = tree.leaves(out);
  const keepSet = new Set(targs.flatMap((t) => tree.leaves(t)));
  const vjpFn = (cotangent: unknown) =>
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
      const cts = backward(tape, pairs.map((p) => p[0]), pairs.map((p) => p[1]), add, keepSet);
      return targs.map((t) => gradTree(t, cts));
    });
  return [out, vjpFn];
}

/** `x` itself in value, but constant to autodiff: no gradient flows through it. */
export function stopGradient<T extends Tree>(x: T): T {
  return tree.map(x, (t) => alias(t));
}
