/**
 * One token of decoding over a KV cache preallocated to a fixed length, with
 * the position as a tensor: every call has the same shapes, so one `jit`
 * trace serves every token. The new key and value rows are written at the
 * position by a mask (`where`), and attention covers the whole cache with
 * the slots past the position masked out.
 * @module
 */
import { arange } from "../core/ops/creation.ts";
import { equal, lessEqual, where } from "../core/ops/elementwise.ts";
import { concat, reshape, slice, stack, take } from "../core/ops/movement.ts";
import { argmax } from "../core/ops/reduce.ts";
import type { Tensor } from "../core/tensor.ts";
import type { LlamaConfig } from "./config.ts";
import { decoder, type LlamaParams } from "./llama.ts";

/** Keys and values of every slot, per layer: [1, numKvHeads, length, headDim]; slots past the position are unused. */
export interface FixedKVCache {
  /** Per layer, keys and values. */
  layers: { k: Tensor; v: Tensor }[];
}

/**
 * Logits [V] of `token` ([1] int32) at position `pos` ([1] int32) and the
 * cache with that position's keys and values written. `rope` holds the RoPE
 * tables of positions 0 … length − 1 (`ropeTables`). With `window` W (< the
 * cache length; pos < W), attention reads the first W slots only: the same
 * logits, bit for bit (the slots past the position weigh exactly 0), for less work.
 */
export function decodeStep(
  params: LlamaParams,
  cache: FixedKVCache,
  token: Tensor,
  pos: Tensor,
  rope: { cos: Tensor; sin: Tensor },
  config: LlamaConfig,
  window?: number,
): { logits: Tensor; cache: FixedKVCache } {
  const L = cache.layers[0].k.shape[2];
  const W = window === undefined ? L : window;
  if (!(Number.isInteger(W) && W >= 1 && W <= L)) {
    throw new Error(`decodeStep: window must be an integer in [1, ${L}] (the cache length), got ${window}`);
  }
  const slots = arange(L, undefined, 1, "int32");
  const here = reshape(equal(slots, pos), [1, 1, L, 1]);
  const mask = reshape(lessEqual(W < L ? arange(W, undefined, 1, "int32") : slots, pos), [1, W]);
  const r = { cos: take(rope.cos, pos, 0), sin: take(rope.sin, pos, 0) };
  const { out, layers } = decoder(params, reshape(token, [1, 1]), config, r, mask, (i, k, v) => {
    const c = cache.layers[i];
    const kk = where(here, k, c.k), vv = where(here, v, c.v);
    if (W === L) return { k: kk, v: vv };
    const end = [...kk.shape.slice(0, 2), W, kk.shape[3]];
    return { k: kk, v: vv, attend: { k: slice(kk, [0, 0, 0, 0], end), v: slice(vv, [0, 0, 0, 0], end) } };
  });
  return { logits: reshape(out, [out.shape[2]]), cache: { layers } };
}

/**
 * `steps` greedy decode steps in one function, so one `jit` call yields `steps` tokens: step j feeds the
 * argmax of step j − 1's logits back as its token (gathered in the graph, never read back) at position
 * `positions[j]` ([steps] int32; each below `window` when one is given). Returns the chosen tokens [steps]
 * (int32), the cache with every step's keys and values written, and with `withLogits` each step's logits
 * [steps, V]. The argmax is the backend's (first index of the maximum), so each step computes exactly what
 * {@link decodeStep} computes.
 */
export function decodeGreedy(
  params: LlamaParams,
  cache: FixedKVCache,
  token: Tensor,
  positions: Tensor,
  rope: { cos: Tensor; sin: Tensor },
  config: LlamaConfig,
  steps: number,
  withLogits: boolean,
  window?: number,
): { tokens: Tensor; cache: FixedKVCache; logits: Tensor | null } {
  const tokens: Tensor[] = [], logits: Tensor[] = [];
  for (let j = 0; j < steps; j++) {
    const r = decodeStep(params, cache, token, slice(positions, [j], [j + 1]), rope, config, window);
    cache = r.cache;
    token = reshape(argmax(r.logits, 0), [1]);
    tokens.push(token);
    if (withLogits) logits.push(r.logits);
  }
  return { tokens: concat(tokens, 0), cache, logits: withLogits ? stack(logits, 0) : null };
}
