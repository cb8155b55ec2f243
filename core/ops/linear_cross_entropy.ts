/**
 * The LM head fused with its cross-entropy: the loss of `x · weightᵀ` against
 * int32 targets, computed a chunk of rows at a time so the [N, V] logits and
 * their gradient never exist whole (at the 15M shape's batch 4 × 256 they are
 * 131 MB each). Same value as `crossEntropy(matmul(x, weight, { transB: true }),
 * targets)`, up to float rounding (sums run chunk by chunk).
 *
 * While a gradient is recorded, each chunk's gradient (softmax − one-hot, times
 * the head) is computed while its logits are at hand, as Liger-Kernel's fused
 * linear cross-entropy does, so the head is not run a second time; the op's vjp
 * rule only scales what was kept ([N, d], plus [V, d] when the head itself is
 * differentiated) by the incoming cotangent. Under nested differentiation
 * (grad of grad) it computes the composite instead, whose rules differentiate
 * again.
 * @module
 */
import { fmt } from "../shape.ts";
import { record, tapes } from "../tape.ts";
import type { Tensor } from "../tensor.ts";
import { noGrad } from "../../autodiff/custom.ts";
import { expectTensor } from "./_util.ts";
import { add, cast, div, equal, exp, maximum, mul, notEqual, sub, where } from "./elementwise.ts";
import { arange } from "./creation.ts";
import { concat, expandDims, slice } from "./movement.ts";
import { matmul } from "./matmul.ts";
import { crossEntropy, takeLast } from "./nn.ts";
import { logsumexp, sum } from "./reduce.ts";

/** Options of {@link linearCrossEntropy}. */
export interface LinearCrossEntropyOptions {
  /** Targets equal to this are ignored (default -100, as in PyTorch). */
  ignoreIndex?: number;
  /** "mean" over counted targets (default) or "sum". */
  reduction?: "mean" | "sum";
  /** Rows per chunk (default: as many as keep one chunk's logits within 2²³ elements, 32 MB, rounded down to a multiple of 8). */
  chunk?: number;
}

/**
 * Elements of one chunk's logits by default: a quarter of the 15M shape's [1024 × 32000] (256 rows). Each chunk
 * passes over the whole head twice (its logits, then its gradient to x), and the cpu matmul packs the head's
 * operand anew on each pass, so rows per chunk are the head's reuse: on the 15M TL6 step 256 rows took 7% less
 * CPU than 64 (peak RSS +47 MiB).
 */
const CHUNK_ELEMENTS = 1 << 23;

/**
 * Mean (or summed) softmax cross-entropy of the logits `x · weightᵀ` — x [N, d],
 * weight [V, d] as a Linear layer stores it, targets [N] int32 — without ever
 * holding all N × V logits. See the module docs.
 * @example
 * const loss = nn.linearCrossEntropy(hidden, params.embed.weight, targets); // tied embeddings
 */
export function linearCrossEntropy(
  x: Tensor,
  weight: Tensor,
  targets: Tensor,
  opts: LinearCrossEntropyOptions = {},
): Tensor {
  expectTensor("linearCrossEntropy", x, "x");
  expectTensor("linearCrossEntropy", weight, "weight");
  expectTensor("linearCrossEntropy", targets, "targets");
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new Error(
      `linearCrossEntropy: expected x [N, d] and weight [V, d], got x ${fmt(x.shape)} and weight ${fmt(weight.shape)}`,
    );
  }
  if (targets.dtype !== "int32" || targets.rank !== 1 || targets.shape[0] !== x.shape[0]) {
    throw new Error(
      `linearCrossEntropy: targets must be int32 [${x.shape[0]}], got ${targets.dtype} ${fmt(targets.shape)}`,
    );
  }
  const { ignoreIndex = -100, reduction = "mean" } = opts;
  if (reduction !== "mean" && reduction !== "sum") {
    throw new Error(`linearCrossEntropy: reduction must be "mean" or "sum", got ${JSON.stringify(reduction)}`);
  }
  const [N, V] = [x.shape[0], weight.shape[0]];
  // A multiple of 8 rows where that fits: the matmul kernels tile rows by 4 and 8 (65 rows ran 25–35% slower
  // than 64 on webgpu).
  const fit = Math.floor(CHUNK_ELEMENTS / V);
  const chunk = opts.chunk ?? (fit >= 8 ? fit - (fit % 8) : Math.max(1, fit));
  if (!Number.isInteger(chunk) || chunk < 1) {
    throw new Error(`linearCrossEntropy: chunk must be a positive integer, got ${chunk}`);
  }
  const needX = tapes.some((t) => t.tracked.has(x)), needW = tapes.some((t) => t.tracked.has(weight));
  if ((needX || needW) && tapes.length > 1) {
    return crossEntropy(matmul(x, weight, { transB: true }), targets, { ignoreIndex, reduction });
  }

  const result = noGrad(() => {
    const free: Tensor[] = [];
    const tmp = <T extends Tensor>(t: T): T => (free.push(t), t);
    const valid = tmp(notEqual(targets, ignoreIndex));
    const safe = tmp(where(valid, targets, 0));
    const weights = tmp(cast(valid, "float32"));
    // The mean divides by the counted targets (at least 1), known before any chunk runs.
    const scale = reduction === "mean" ? tmp(div(1, maximum(tmp(sum(weights)), 1))) : null;
    const vocab = tmp(arange(0, V, 1, "int32"));
    let total: Tensor | null = null;
    const dxs: Tensor[] = [];
    let dw: Tensor | null = null;
    for (let r0 = 0; r0 < N; r0 += chunk) {
      const rows = Math.min(chunk, N - r0);
      const part: Tensor[] = [];
      const own = <T extends Tensor>(t: T): T => (part.push(t), t);
      const xc = own(slice(x, [r0, 0], [r0 + rows, x.shape[1]]));
      const tc = own(slice(safe, [r0], [r0 + rows]));
      const wc = own(slice(weights, [r0], [r0 + rows]));
      const logits = own(matmul(xc, weight, { transB: true })); // [rows, V]
      const lse = own(logsumexp(logits, -1)); // [rows]
      const nll = own(mul(own(sub(lse, own(takeLast(logits, tc)))), wc));
      const s = own(sum(nll));
      const next: Tensor = total ? add(total, s) : s;
      if (total) total.dispose();
      if (next === s) part.splice(part.indexOf(s), 1);
      total = next;
      if (needX || needW) {
        // d loss / d logits = (softmax − one-hot) · weight of the row · scale.
        const p = own(exp(own(sub(logits, own(expandDims(lse, 1))))));
        const hot = own(cast(own(equal(vocab, own(expandDims(tc, 1)))), "float32"));
        const rowScale = own(expandDims(scale ? own(mul(wc, scale)) : wc, 1));
        const dlogits = own(mul(own(sub(p, hot)), rowScale)); // [rows, V]
        if (needX) dxs.push(matmul(dlogits, weight)); // [rows, d]
        if (needW) {
          const dwc = matmul(dlogits, xc, { transA: true }); // [V, d]
          const acc: Tensor = dw ? add(dw, dwc) : dwc;
          if (dw) (dw.dispose(), dwc.dispose());
          dw = acc;
        }
      }
      for (const t of part) t.dispose();
    }
    const loss = scale ? mul(total!, scale) : total!;
    if (loss !== total) total!.dispose();
    const dx = needX ? (dxs.length === 1 ? dxs[0] : concat(dxs, 0)) : null;
    if (dxs.length > 1) { for (const t of dxs) t.dispose(); }
    for (const t of free) t.dispose();
    return { loss, dx, dw: dw as Tensor | null };
  });

  const { loss, dx, dw } = result;
  if (needX || needW) {
    // The rule only scales the gradients kept above; they live as long as the tape holds this node.
    const rule = (g: Tensor): (Tensor | null)[] => [dx ? mul(dx, g) : null, dw ? mul(dw, g) : null];
    record(
      "custom",
      {
        forward: (a: Tensor, b: Tensor) => linearCrossEntropy(a, b, targets, opts),
        rule,
        out: { shape: loss.shape, dtype: loss.dtype },
      },
      [x, weight],
      loss,
    );
  }
  return loss;
}
