/**
 * The one gradient checker: compares autodiff gradients with central finite
 * differences, element by element, for every float32 leaf of every argument.
 * @module
 */
import { scope } from "../core/scope.ts";
import { fromBuffer, type Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { valueAndGrad } from "./grad.ts";

/** Options of {@link checkGrad}. */
export interface CheckGradOptions {
  /** Relative tolerance (default 2e-3: tight enough that a vjp 1% off fails). */
  rtol?: number;
  /** Absolute tolerance (default 1e-3, for float32 rounding in the differences). */
  atol?: number;
  /** Finite-difference step (default 3e-3). */
  eps?: number;
  /** Arguments to check (default: every argument whose leaves are all float32, e.g. not int32 targets). */
  argnums?: readonly number[];
}

/** What {@link checkGrad} measured. */
export interface CheckGradReport {
  /** Number of elements compared. */
  checked: number;
  /** Largest |analytic − numeric|. */
  maxAbsError: number;
}

function replaceLeaf(args: unknown[], argIndex: number, path: string, leaf: Tensor): unknown[] {
  const out = args.slice();
  out[argIndex] = path === "" ? leaf : tree.set(args[argIndex] as Tree, path, leaf);
  return out;
}

/**
 * Checks `grad(f)` against central finite differences (f(x+ε) − f(x−ε)) / 2ε
 * for every element of every float32 leaf of the checked arguments.
 * `f` must return a float32 scalar. Throws an Error naming the argument,
 * leaf path and element on the first mismatch beyond `atol + rtol·|numeric|`.
 * @example
 * await checkGrad((x) => sum(tanh(x)), [tensor([0.1, -0.4])]);
 */
export async function checkGrad(
  f: (...args: never[]) => Tensor,
  args: readonly unknown[],
  opts: CheckGradOptions = {},
): Promise<CheckGradReport> {
  const { rtol = 2e-3, atol = 1e-3, eps = 3e-3 } = opts;
  const argnums = opts.argnums ??
    args.flatMap((a, i) => {
      const ls = tree.leaves(a);
      return ls.length && ls.every((t) => t.dtype === "float32") ? [i] : [];
    });
  if (!argnums.length) throw new Error("checkGrad: no argument has float32 leaves to check");
  const [value, grads] = valueAndGrad(f, { argnums })(...(args as never[]));
  value.dispose();
  let checked = 0, maxAbsError = 0;
  for (let k = 0; k < argnums.length; k++) {
    const n = argnums[k];
    const analytic = new Map(tree.entries(grads[k]));
    for (const [path, leaf] of tree.entries(args[n])) {
      if (leaf.dtype !== "float32") continue;
      const base = (await leaf.data()) as Float32Array;
      const g = (await analytic.get(path)!.data()) as Float32Array;
      for (let i = 0; i < base.length; i++) {
        const probe = async (delta: number) =>
          await scope(async () => {
            const v = base.slice();
            v[i] += delta;
            const t = fromBuffer(leaf.backend, leaf.backend.upload(v, "float32"), leaf.shape, "float32");
            return await f(...(replaceLeaf(args as unknown[], n, path, t) as never[])).item();
          });
        const numeric = ((await probe(eps)) - (await probe(-eps))) / (2 * eps);
        const err = Math.abs(g[i] - numeric);
        maxAbsError = Math.max(maxAbsError, err);
        checked++;
        if (!(err <= atol + rtol * Math.abs(numeric))) {
          throw new Error(
            `checkGrad: argument ${n}${path ? ` leaf "${path}"` : ""} element ${i}: autodiff ${
              g[i]
            } vs finite difference ${numeric} (|diff| ${err.toExponential(2)} > atol ${atol} + rtol ${rtol}·|fd|)`,
          );
        }
      }
    }
  }
  tree.leaves(grads).forEach((t) => t.dispose());
  return { checked, maxAbsError };
}
