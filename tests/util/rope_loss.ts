/**
 * A loss whose program has every movement the webgpu fusion folds: RoPE's concatenation of sliced halves (and,
 * in its gradient, the pads of the slices' gradients), a transposed head layout, broadcasts of reductions, and
 * values read by several kernels (recomputed under `recompute`). Shared by the fusion tests (jit_fuse_test.ts,
 * webgpu_fused_test.ts).
 * @module
 */
import { add, exp, llama, mul, nn, rsqrt, square, sum, type Tensor, transpose } from "../../mod.ts";

/** x [2, 3, 4, 8] times w, through RoPE (tables [4, 8]), transposed, then exp, RMSNorm, silu and softmax sums. */
export function ropeLoss(x: Tensor, w: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const h = llama.applyRope(mul(x, w), cos, sin); // [2, 3, 4, 8]
  const t = transpose(h, [0, 2, 1, 3]); // [2, 4, 3, 8]
  const e = exp(mul(t, 0.5));
  const norm = mul(e, rsqrt(add(sum(square(e), -1, { keepdims: true }), 1e-5)));
  return add(sum(mul(norm, nn.silu(t))), sum(nn.softmax(add(e, t), -1)));
}
