/**
 * Reductions over axes (`sum mean max min logsumexp argmax`), with `keepdims`.
 * Called without an axis they reduce everything to a scalar. Each records its
 * primitive (core/primitives.ts) with the axes it reduced; `mean` is a
 * composite. The vjp rules are in autodiff/vjp_rules.ts.
 * @module
 */
import { reduceDtype, type ReducePrimitive } from "../primitives.ts";
import { normAxes, normAxis, sizeOf } from "../shape.ts";
import { record } from "../tape.ts";
import type { Tensor } from "../tensor.ts";
import { expectTensor, wrap } from "./_util.ts";
import { cast, div } from "./elementwise.ts";
import { reshape } from "./movement.ts";

/** Options of the reductions. */
export interface ReduceOptions {
  /** Keep reduced axes as size-1 dimensions (default false). */
  keepdims?: boolean;
}

/** Axis argument of a reduction: one axis, several, or undefined for all. */
export type Axes = number | readonly number[] | undefined;

/** Runs a reduction over `axes`, merging runs of adjacent axes into one kernel call. */
function reduceRaw(op: ReducePrimitive, x: Tensor, axes: number[]): Tensor {
  let cur = x;
  let shape = [...x.shape];
  // Reduce the last run first so earlier axis numbers stay valid.
  for (let end = axes.length - 1; end >= 0;) {
    let start = end;
    while (start > 0 && axes[start - 1] === axes[start] - 1) start--;
    const a0 = axes[start], a1 = axes[end];
    const outer = sizeOf(shape.slice(0, a0));
    const red = sizeOf(shape.slice(a0, a1 + 1));
    const inner = sizeOf(shape.slice(a1 + 1));
    const outDtype = reduceDtype(op, cur.dtype);
    const input = cur.dtype === "bool" || (op === "logsumexp" && cur.dtype !== "float32")
      ? cast(cur, op === "logsumexp" ? "float32" : "int32")
      : cur;
    shape = [...shape.slice(0, a0), ...shape.slice(a0, a1 + 1).map(() => 1), ...shape.slice(a1 + 1)];
    cur = wrap(x.backend, x.backend.reduce(op, input.buffer, outer, red, inner), shape, outDtype);
    end = start - 1;
  }
  return cur;
}

function reduction(name: string, op: ReducePrimitive, x: Tensor, axis: Axes, opts: ReduceOptions): Tensor {
  expectTensor(name, x);
  const axes = normAxes(name, axis, x.shape);
  if (axes.some((a) => x.shape[a] === 0) && op !== "sum") {
    throw new Error(`${name}: cannot reduce an empty axis (shape [${x.shape}], axes [${axes}])`);
  }
  const kept = reduceRaw(op, x, axes);
  const out = opts.keepdims ? kept : reshape(kept, x.shape.filter((_, i) => !axes.includes(i)));
  if (out.dtype === "float32") record(op, { axes, keepdims: !!opts.keepdims }, [x], out);
  return out;
}

/** Sum over `axis` (all axes when omitted). bool sums count as int32. */
export function sum(x: Tensor, axis?: Axes, opts: ReduceOptions = {}): Tensor {
  return reduction("sum", "sum", x, axis, opts);
}

/** Arithmetic mean over `axis` (all axes when omitted). */
export function mean(x: Tensor, axis?: Axes, opts: ReduceOptions = {}): Tensor {
  expectTensor("mean", x);
  const axes = normAxes("mean", axis, x.shape);
  const n = axes.reduce((acc, a) => acc * x.shape[a], 1);
  const xs = x.dtype === "float32" ? x : cast(x, "float32");
  return div(sum(xs, axes, opts), n);
}

/** Maximum over `axis` (all axes when omitted). */
export function max(x: Tensor, axis?: Axes, opts: ReduceOptions = {}): Tensor {
  return reduction("max", "max", x, axis, opts);
}

/** Minimum over `axis` (all axes when omitted). */
export function min(x: Tensor, axis?: Axes, opts: ReduceOptions = {}): Tensor {
  return reduction("min", "min", x, axis, opts);
}

/** log Σ exp(x) over `axis`, computed stably (max subtracted first). */
export function logsumexp(x: Tensor, axis?: Axes, opts: ReduceOptions = {}): Tensor {
  return reduction("logsumexp", "logsumexp", x, axis, opts);
}

/** Index of the largest value along one axis (the whole flattened tensor when omitted); int32, first index on ties. */
export function argmax(x: Tensor, axis?: number, opts: ReduceOptions = {}): Tensor {
  expectTensor("argmax", x);
  if (axis === undefined) {
    const flat = reshape(x, [x.size]);
    const r = reduction("argmax", "argmax", flat, 0, {});
    return opts.keepdims ? reshape(r, x.shape.map(() => 1)) : r;
  }
  return reduction("argmax", "argmax", x, normAxis("argmax", axis, x.rank, x.shape), opts);
}
