/**
 * Layers as pure functions of parameter nodes. A linear layer is a node
 * `{ weight: [out, in] }`; it may also carry a low-rank update
 * `{ A: [r, in], B: [out, r], u?: [r], v?: [out] }` (any subset of u, v),
 * applied as  y = x·Wᵀ + v ⊙ (B · (u ⊙ (A · x))).  nn knows nothing of how
 * such leaves got there (that is peft's business): it only computes with them.
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { add, mul, rsqrt } from "../core/ops/elementwise.ts";
import { matmul } from "../core/ops/matmul.ts";
import { mean } from "../core/ops/reduce.ts";
import { square } from "../core/ops/elementwise.ts";
import { fmt } from "../core/shape.ts";

/** A low-rank update of a linear map; see the module docs for the formula. */
export type LowRankUpdate = {
  A?: Tensor | null;
  B?: Tensor | null;
  u?: Tensor | null;
  v?: Tensor | null;
};

/** A linear layer's parameter node: its weight [out, in], optionally with a low-rank update. */
export type LinearParams = LowRankUpdate & {
  weight: Tensor;
};

/**
 * The low-rank term v ⊙ (B · (u ⊙ (A · x))) for x [..., in], or null when the
 * node carries no complete update (A and B are both needed).
 */
export function lowRankDelta(x: Tensor, update: LowRankUpdate, where = "lowRank"): Tensor | null {
  const { A, B, u, v } = update;
  if (!A && !B) return null;
  if (!A || !B) throw new Error(`${where}: a low-rank update needs both A and B (got only ${A ? "A" : "B"})`);
  if (A.shape[0] !== B.shape[1] || A.shape[1] !== x.shape[x.rank - 1]) {
    throw new Error(
      `${where}: A ${fmt(A.shape)} and B ${fmt(B.shape)} do not fit input ${fmt(x.shape)} (need A [r, in], B [out, r])`,
    );
  }
  let h = matmul(x, A, { transB: true }); // [..., r]
  if (u) h = mul(h, u);
  let d = matmul(h, B, { transB: true }); // [..., out]
  if (v) d = mul(d, v);
  return d;
}

/** y = x·Wᵀ (+ the node's low-rank update). x: [..., in] → [..., out]. */
export function linear(x: Tensor, p: LinearParams, where = "linear"): Tensor {
  if (!p?.weight) throw new Error(`${where}: parameter node has no weight`);
  const y = matmul(x, p.weight, { transB: true });
  const d = lowRankDelta(x, p, where);
  return d ? add(y, d) : y;
}

/** RMSNorm: x · rsqrt(mean(x²) + eps) · weight, over the last axis. */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  return mul(mul(x, rsqrt(add(mean(square(x), -1, { keepdims: true }), eps))), weight);
}
