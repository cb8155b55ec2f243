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
import { reshape, take } from "../core/ops/movement.ts";
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
 * tables of positions 0 … length − 1 (`ropeTables`).
 */
export function decodeStep(
  params: LlamaParams,
  cache: FixedKVCache,
  token: Tensor,
  pos: Tensor,
  rope: { cos: Tensor; sin: Tensor },
  config: LlamaConfig,
): { logits: Tensor; cache: FixedKVCache } {
  const L = cache.layers[0].k.shape[2];
  const slots = arange(L, undefined, 1, "int32");
  const here = reshape(equal(slots, pos), [1, 1, L, 1]);
  const mask = reshape(lessEqual(slots, pos), [1, L]);
  const r = { cos: take(rope.cos, pos, 0), sin: take(rope.sin, pos, 0) };
  const { out, layers } = decoder(params, reshape(token, [1, 1]), config, r, mask, (i, k, v) => {
    const c = cache.layers[i];
    return { k: where(here, k, c.k), v: where(here, v, c.v) };
  });
  return { logits: reshape(out, [out.shape[2]]), cache: { layers } };
}
