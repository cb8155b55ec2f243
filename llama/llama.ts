/**
 * A pure Llama forward: RMSNorm, RoPE (HF rotate-half), grouped-query
 * attention, SwiGLU MLP, tied or untied LM head, causal mask, and a
 * functional KV cache for incremental decoding. Differentiable end to end.
 *
 * Parameter tree (every linear is a node `{ weight: [out, in] }`):
 *   embed.weight [V, d]
 *   layers[i].attnNorm.weight [d]
 *   layers[i].attn.{q,k,v,o}            linear nodes
 *   layers[i].attn.qkv                  optional low-rank update of the fused Q|K|V map [m = d + 2·dkv]
 *   layers[i].mlpNorm.weight [d]
 *   layers[i].mlp.{gate,up,down}        linear nodes
 *   norm.weight [d]
 *   lmHead                              linear node, absent when embeddings are tied
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { add, mul, silu, where } from "../core/ops/elementwise.ts";
import { matmul } from "../core/ops/matmul.ts";
import { concat, expandDims, permute, reshape, split, take } from "../core/ops/movement.ts";
import { causalMask, softmax } from "../core/ops/nn.ts";
import { fmt } from "../core/shape.ts";
import type { LlamaConfig } from "./config.ts";
import { linear, type LinearParams, lowRankDelta, type LowRankUpdate, rmsNorm } from "./layers.ts";
import { applyRope, ropeTables } from "./rope.ts";

/** One decoder layer's parameters. */
export type LlamaLayerParams = {
  attnNorm: { weight: Tensor };
  attn: { q: LinearParams; k: LinearParams; v: LinearParams; o: LinearParams; qkv?: LowRankUpdate | null };
  mlpNorm: { weight: Tensor };
  mlp: { gate: LinearParams; up: LinearParams; down: LinearParams };
};

/** The whole model's parameters. */
export type LlamaParams = {
  embed: { weight: Tensor };
  layers: LlamaLayerParams[];
  norm: { weight: Tensor };
  lmHead?: LinearParams | null;
};

/** Keys and values seen so far, per layer: [batch, numKvHeads, length, headDim] (after RoPE). */
export interface KVCache {
  /** Per layer, keys and values: [batch, numKvHeads, length, headDim]. */
  layers: { k: Tensor; v: Tensor }[];
  /** Number of positions cached. */
  length: number;
}

/** Options of {@link forward}. */
export interface ForwardOptions {
  /** Absolute positions of the tokens (default: cache length + 0..T-1). */
  positions?: readonly number[];
  /** Return the final hidden states [B, T, d] instead of logits (apply {@link lmHead} where needed). */
  returnHidden?: boolean;
}

function asBatch(tokens: Tensor): Tensor {
  if (tokens.dtype !== "int32") throw new Error(`llama.forward: tokens must be int32, got ${tokens.dtype}`);
  if (tokens.rank === 1) return expandDims(tokens, 0);
  if (tokens.rank === 2) return tokens;
  throw new Error(`llama.forward: tokens must be [T] or [B, T], got ${fmt(tokens.shape)}`);
}

function attention(
  p: LlamaLayerParams["attn"],
  x: Tensor,
  c: LlamaConfig,
  rope: { cos: Tensor; sin: Tensor },
  mask: Tensor,
  extend: (k: Tensor, v: Tensor) => Extended,
  site: string,
): { out: Tensor; k: Tensor; v: Tensor } {
  const [B, T] = x.shape;
  const hd = c.headDim, nKv = c.numKvHeads, rep = c.numHeads / c.numKvHeads;
  let q = linear(x, p.q, `${site}.q`);
  let k = linear(x, p.k, `${site}.k`);
  let v = linear(x, p.v, `${site}.v`);
  if (p.qkv) {
    // The fused Q|K|V update (Tied-LoRA's site): one low-rank map onto [q | k | v].
    const delta = lowRankDelta(x, p.qkv, `${site}.qkv`);
    if (delta) {
      const [dq, dk, dv] = split(delta, [c.numHeads * hd, nKv * hd, nKv * hd], -1);
      q = add(q, dq);
      k = add(k, dk);
      v = add(v, dv);
    }
  }
  // Heads: q [B, nKv, rep, T, hd]; k, v [B, nKv, T, hd].
  q = applyRope(permute(reshape(q, [B, T, nKv, rep, hd]), [0, 2, 3, 1, 4]), rope.cos, rope.sin);
  k = applyRope(permute(reshape(k, [B, T, nKv, hd]), [0, 2, 1, 3]), rope.cos, rope.sin);
  v = permute(reshape(v, [B, T, nKv, hd]), [0, 2, 1, 3]);
  const e = extend(k, v);
  ({ k, v } = e);
  // Each KV head serves `rep` query heads through batch broadcasting: no copies.
  const scores = mul(matmul(q, expandDims(e.attend?.k ?? k, 2), { transB: true }), 1 / Math.sqrt(hd)); // [B, nKv, rep, T, S]
  const probs = softmax(where(mask, scores, -Infinity), -1);
  const ctx = matmul(probs, expandDims(e.attend?.v ?? v, 2)); // [B, nKv, rep, T, hd]
  const merged = reshape(permute(ctx, [0, 3, 1, 2, 4]), [B, T, c.numHeads * hd]);
  return { out: linear(merged, p.o, `${site}.o`), k, v };
}

/** The forward pass with an explicit cache: returns logits (or hidden states) and the extended cache. */
export function forwardWithCache(
  params: LlamaParams,
  tokens: Tensor,
  config: LlamaConfig,
  cache: KVCache | null,
  opts: ForwardOptions = {},
): { logits: Tensor; cache: KVCache } {
  const ids = asBatch(tokens);
  const T = ids.shape[1];
  if (params.layers.length !== config.numLayers) {
    throw new Error(`llama.forward: params have ${params.layers.length} layers, config says ${config.numLayers}`);
  }
  const past = cache?.length ?? 0;
  const positions = opts.positions ?? Array.from({ length: T }, (_, i) => past + i);
  if (positions.length !== T) throw new Error(`llama.forward: ${positions.length} positions for ${T} tokens`);
  const rope = ropeTables(config, positions);
  const mask = causalMask(T, past + T, past);
  const { out, layers } = decoder(params, ids, config, rope, mask, (i, k, v) => {
    const prev = cache?.layers[i];
    return prev ? { k: concat([prev.k, k], 2), v: concat([prev.v, v], 2) } : { k, v };
  }, opts);
  const shaped = tokens.rank === 1 ? reshape(out, out.shape.slice(1)) : out;
  return { logits: shaped, cache: { layers, length: past + T } };
}

/**
 * What `extend` returns: a layer's keys and values [B, nKv, S, hd] (its cache after this call), and
 * optionally the part of them attention reads (a prefix of S: slots past it are masked out anyway).
 */
export interface Extended {
  /** Keys [B, nKv, S, hd]. */
  k: Tensor;
  /** Values [B, nKv, S, hd]. */
  v: Tensor;
  /** Keys and values attended to (default k and v); `mask` covers their S. */
  attend?: { k: Tensor; v: Tensor };
}

/**
 * The layer stack on token ids [B, T]: `extend(i, k, v)` gives layer i's keys
 * and values attended to from this call's (a cache extended by them). Returns
 * logits (or hidden states) [B, T, …] and each layer's keys and values.
 */
export function decoder(
  params: LlamaParams,
  ids: Tensor,
  config: LlamaConfig,
  rope: { cos: Tensor; sin: Tensor },
  mask: Tensor,
  extend: (layer: number, k: Tensor, v: Tensor) => Extended,
  opts: { returnHidden?: boolean } = {},
): { out: Tensor; layers: KVCache["layers"] } {
  let h = take(params.embed.weight, ids, 0); // [B, T, d]
  const layers: KVCache["layers"] = [];
  params.layers.forEach((layer, i) => {
    const xa = rmsNorm(h, layer.attnNorm.weight, config.rmsNormEps);
    const a = attention(layer.attn, xa, config, rope, mask, (k, v) => extend(i, k, v), `layers.${i}.attn`);
    layers.push({ k: a.k, v: a.v });
    h = add(h, a.out);
    const x = rmsNorm(h, layer.mlpNorm.weight, config.rmsNormEps);
    const m = layer.mlp;
    // Both products before silu: traced in a row they become one fork-join in a compiled step (cpu/compile.ts).
    const gate = linear(x, m.gate, `layers.${i}.mlp.gate`), up = linear(x, m.up, `layers.${i}.mlp.up`);
    const gated = mul(silu(gate), up);
    h = add(h, linear(gated, m.down, `layers.${i}.mlp.down`));
  });
  h = rmsNorm(h, params.norm.weight, config.rmsNormEps);
  return { out: opts.returnHidden ? h : lmHead(params, config, h), layers };
}

/**
 * Logits [..., V] for tokens [T] or [B, T] (→ [T, V] or [B, T, V]).
 * Pure: parameters are inputs like any other, so `grad` differentiates it.
 */
export function forward(
  params: LlamaParams,
  tokens: Tensor,
  config: LlamaConfig,
  opts: ForwardOptions & { cache?: KVCache | null } = {},
): Tensor {
  return forwardWithCache(params, tokens, config, opts.cache ?? null, opts).logits;
}

/** The LM head on final hidden states [..., d] → logits [..., V] (the embedding matrix when tied). */
export function lmHead(params: LlamaParams, config: LlamaConfig, hidden: Tensor): Tensor {
  if (config.tieWordEmbeddings || !params.lmHead) {
    if (!config.tieWordEmbeddings) {
      throw new Error("llama.lmHead: config has untied embeddings but params have no lmHead");
    }
    return matmul(hidden, params.embed.weight, { transB: true });
  }
  return linear(hidden, params.lmHead, "lmHead");
}
