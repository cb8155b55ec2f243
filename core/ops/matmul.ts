/**
 * Matrix product with NumPy batch broadcasting and transposed operands read
 * in place. Its vjp (autodiff/vjp_rules.ts) is two more matmuls (never an
 * M×K×N intermediate).
 * @module
 */
import { broadcastShapes, fmt, type Shape, stridesOf } from "../shape.ts";
import { record } from "../tape.ts";
import type { Tensor } from "../tensor.ts";
import { backendOf, checkAlloc, expectFloat, expectTensor, wrap } from "./_util.ts";
import { reshape } from "./movement.ts";

/** Options of {@link matmul}. */
export interface MatmulOptions {
  /** Use the transpose of a's last two axes (read in place, no copy). */
  transA?: boolean;
  /** Use the transpose of b's last two axes (read in place, no copy). */
  transB?: boolean;
}

/** Batch strides (in elements, per output batch axis) of an operand broadcast to `batch`. */
function batchStrides(shape: Shape, batch: Shape): number[] {
  const own = shape.slice(0, -2);
  const matrix = shape[shape.length - 1] * shape[shape.length - 2];
  const st = stridesOf(own).map((s) => s * matrix);
  const off = batch.length - own.length;
  return batch.map((_, i) => (i < off || own[i - off] === 1 ? 0 : st[i - off]));
}

/**
 * a · b over the last two axes, broadcasting the leading (batch) axes.
 * 1-D operands are treated as a row (a) or column (b) vector and that axis is
 * dropped from the result, as in NumPy.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  expectTensor("matmul", a, "a");
  expectTensor("matmul", b, "b");
  expectFloat("matmul", a);
  expectFloat("matmul", b);
  if (a.rank === 0 || b.rank === 0) {
    throw new Error(`matmul: operands must have at least 1 axis, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  if (a.rank === 1 || b.rank === 1) {
    const a2 = a.rank === 1 ? reshape(a, [1, a.shape[0]]) : a;
    const b2 = b.rank === 1 ? reshape(b, [b.shape[0], 1]) : b;
    const out = matmul(a2, b2, {
      transA: a.rank === 1 ? false : opts.transA,
      transB: b.rank === 1 ? false : opts.transB,
    });
    const s = [...out.shape];
    if (b.rank === 1) s.splice(s.length - 1, 1);
    if (a.rank === 1) s.splice(s.length - (b.rank === 1 ? 1 : 2), 1);
    return reshape(out, s);
  }
  const transA = !!opts.transA, transB = !!opts.transB;
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar, K = transA ? ar : ac;
  const Kb = transB ? bc : br, N = transB ? br : bc;
  if (K !== Kb) {
    throw new Error(
      `matmul: inner dimensions differ: a ${fmt(a.shape)}${transA ? "ᵀ" : ""} has ${K} columns, b ${fmt(b.shape)}${
        transB ? "ᵀ" : ""
      } has ${Kb} rows (axis -2 of b${transB ? "ᵀ" : ""})`,
    );
  }
  let batch: number[];
  try {
    batch = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  } catch {
    throw new Error(
      `matmul: batch axes of a ${fmt(a.shape)} and b ${
        fmt(b.shape)
      } cannot be broadcast together (all but the last two axes)`,
    );
  }
  const backend = backendOf("matmul", a, b);
  checkAlloc("matmul", backend, [...batch, M, N], "float32");
  const buf = backend.matmul(a.buffer, b.buffer, {
    batchShape: batch,
    aBatchStrides: batchStrides(a.shape, batch),
    bBatchStrides: batchStrides(b.shape, batch),
    M,
    K,
    N,
    transA,
    transB,
  });
  const out = wrap(backend, buf, [...batch, M, N], "float32");
  record("matmul", { transA, transB }, [a, b], out);
  return out;
}
