/**
 * Autoregressive generation with the KV cache: one prefill of the prompt,
 * then one token per step, streamed through an async iterator. Greedy at
 * temperature 0 (jitted: up to {@link blockCap} steps per program, the
 * argmax taken and fed back inside it, so the host reads tokens once a
 * block); otherwise temperature / top-k / top-p sampling driven by an
 * explicit PRNG key, so the same key gives the same text.
 * @module
 */
import { foldIn, type Key, key as makeKey } from "../core/random.ts";
import { argmax, sampleToken } from "./sample.ts";
import { scope } from "../core/scope.ts";
import { pad, slice } from "../core/ops/movement.ts";
import type { Tensor } from "../core/tensor.ts";
import { jit } from "../jit/jit.ts";
import { decodeGreedy, decodeStep, type FixedKVCache } from "./decode.ts";
import { ropeTables } from "./rope.ts";
import { tensor } from "../core/ops/creation.ts";
import { dispose } from "../core/scope.ts";
import { leaves } from "../core/tree.ts";
import type { LlamaConfig } from "./config.ts";
import { forwardWithCache, type LlamaParams } from "./llama.ts";

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Most tokens to generate (default 64). */
  maxTokens?: number;
  /** 0 (default) is greedy; higher flattens the distribution. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 = off). */
  topP?: number;
  /** PRNG key for sampling (default key(0)). */
  key?: Key;
  /** Token ids that end generation (default: the config's EOS). The stop token is not yielded. */
  stop?: readonly number[];
  /** Called with the logits each token was chosen from (step 0: the last prompt position). */
  onLogits?: (logits: Float32Array, step: number) => void;
  /**
   * Decode with jitted programs (default true: greedy in blocks of up to {@link blockCap} steps, sampling a
   * step per program); false runs each step op by op (same results on cpu).
   */
  jit?: boolean;
}

/** Most greedy decode steps traced into one program (one jit call per this many tokens), past SMALL_MODEL_PARAMS. */
export const MAX_BLOCK = 16;
/**
 * Most steps of a greedy program for a model of at most {@link SMALL_MODEL_PARAMS} weights. Its steps are short
 * (stories260K's ~50 µs), so the JavaScript of the jit call around each block (0.2–0.4 ms: it runs a few times a
 * call, never optimized) weighs: 32 steps read 1.04–1.05× the tokens/s of 16, 64 1.06× those of 32 (alternating in
 * one process), for ~150 ms more on a first call (a trace twice as long; 128: 1.02× more for ~300 ms more). On the
 * 15M shape longer blocks would cost ~0.3 s for well under 1%, so larger models keep {@link MAX_BLOCK}.
 */
export const SMALL_MODEL_BLOCK = 64;
/** Weights (elements) up to which a model decodes greedily in blocks of {@link SMALL_MODEL_BLOCK}. */
export const SMALL_MODEL_PARAMS = 1 << 20;

/** The most steps of a greedy block for a model with these weights. */
export function blockCap(params: LlamaParams): number {
  const weights = leaves(params).reduce((n, t) => n + t.size, 0);
  return weights <= SMALL_MODEL_PARAMS ? SMALL_MODEL_BLOCK : MAX_BLOCK;
}

/** Cache lengths of greedy decoding are powers of two from this (or the context length). */
const MIN_CACHE = 32;
/**
 * The smallest attention window of a greedy block: windows double from it up to the whole cache. Each
 * window is a program of its own (traced and compiled once, then kept): from 128, a generation of up to
 * 128 tokens has one, and a longer one attends to about a third less than the whole cache would make it.
 */
const MIN_WINDOW = 128;

/** The smallest power of two from `from` that is ≥ `n`, capped at `cap`. */
function pow2(from: number, n: number, cap: number): number {
  let w = from;
  while (w < n) w *= 2;
  return Math.min(w, cap);
}

/** Steps of a greedy block when `left` decode steps remain: `cap`, or the power of two that covers the rest. */
function blockFor(left: number, cap: number): number {
  let b = 1;
  while (b < left && b < cap) b *= 2;
  return b;
}

// The decode programs, shared by every call: a call with the same parameter shapes, config object and cache
// length as an earlier one reuses its trace and compiled program (clearGenerateCache frees them).
const jittedStep = jit(decodeStep, { static: [5], donate: [1], cacheSize: 4 });
const greedyBlock = jit(decodeGreedy, { static: [5, 6, 7, 8], donate: [1], cacheSize: 8 });

/**
 * Frees the decode programs {@link generate} keeps between calls (each holds its planned memory and
 * constants until it is dropped, least recently used first, past four single steps and eight greedy blocks, or until this is called).
 */
export function clearGenerateCache(): void {
  jittedStep.clear();
  greedyBlock.clear();
}

/** The decode programs {@link generate} keeps now: single steps (sampling; at most 4) and greedy blocks (at most 8). */
export function keptDecodePrograms(): { steps: number; blocks: number } {
  return { steps: jittedStep.cached, blocks: greedyBlock.cached };
}

/**
 * Streams generated token ids after `promptTokens`.
 * @example
 * for await (const id of generate(params, config, tok.encode("Once upon a time"), { maxTokens: 50 })) {
 *   console.log(tok.decode([id]));
 * }
 */
export async function* generate(
  params: LlamaParams,
  config: LlamaConfig,
  promptTokens: readonly number[],
  opts: GenerateOptions = {},
): AsyncGenerator<number, void, undefined> {
  if (!promptTokens.length) throw new Error("generate: the prompt needs at least one token (e.g. BOS)");
  const bad = promptTokens.find((t) => !Number.isInteger(t) || t < 0 || t >= config.vocabSize);
  if (bad !== undefined) {
    throw new Error(`generate: prompt token ${bad} is outside the vocabulary [0, ${config.vocabSize})`);
  }
  if (promptTokens.length > config.maxPositionEmbeddings) {
    throw new Error(
      `generate: the prompt has ${promptTokens.length} tokens, the model's context is ${config.maxPositionEmbeddings}`,
    );
  }
  const { maxTokens = 64, key = makeKey(0), jit: jitted = true } = opts;
  const eos = config.eosTokenId;
  const stop = new Set(opts.stop ?? (eos === null ? [] : typeof eos === "number" ? [eos] : eos));
  if (maxTokens <= 0) return;
  // The cache holds every position this call can reach: the prompt, then one per decoded token.
  const T = promptTokens.length;
  const needed = Math.min(config.maxPositionEmbeddings, T + maxTokens - 1), decodes = needed - T;
  const greedy = jitted && (opts.temperature ?? 0) <= 0;
  // Greedy and jitted: blocks of decode steps, one program each (a block may run past the positions needed;
  // its extra steps' tokens are dropped, and past the cache they write nothing but read RoPE rows: one per
  // step). Jitted, the cache length is a power of two (or the context), so calls with other prompt lengths
  // share programs; attention reads only its window (the slots past a position weigh exactly 0: same bits).
  const length = jitted ? pow2(MIN_CACHE, needed, config.maxPositionEmbeddings) : needed;
  const cap = greedy ? blockCap(params) : 1;
  const ropeRows = length + cap - 1;
  const prefill = scope(() => {
    const r = forwardWithCache(params, tensor([...promptTokens], [T], "int32"), config, null);
    const grow = (x: Tensor) => pad(x, [[0, 0], [0, 0], [0, length - T], [0, 0]]);
    return {
      last: slice(r.logits, [T - 1], [T]),
      cache: { layers: r.cache.layers.map(({ k, v }) => ({ k: grow(k), v: grow(v) })) } as FixedKVCache,
      rope: ropeTables(config, Array.from({ length: ropeRows }, (_, i) => i)),
    };
  });
  let cache: FixedKVCache = prefill.cache;
  let last: Tensor | null = prefill.last;
  try {
    const first = (await last.data()) as Float32Array;
    last.dispose();
    last = null;
    opts.onLogits?.(first, 0);
    let next = (opts.temperature ?? 0) > 0 ? sampleToken(first, { ...opts, key: foldIn(key, 0) }) : argmax(first);
    for (let step = 0;;) {
      if (stop.has(next)) return;
      yield next;
      const pos = T + step;
      if (step + 1 >= maxTokens || pos >= config.maxPositionEmbeddings) return;
      const prev = cache;
      if (greedy) {
        // One program computes the next `block` tokens; they are read back together.
        const block = blockFor(decodes - step, cap);
        const out = scope(() => {
          const token = tensor([next], [1], "int32");
          const at = tensor(Array.from({ length: block }, (_, j) => pos + j), [block], "int32");
          const logits = opts.onLogits !== undefined, window = pow2(MIN_WINDOW, pos + block, length);
          return greedyBlock(params, prev, token, at, prefill.rope, config, block, logits, window);
        });
        cache = out.cache;
        const ids = (await out.tokens.data()) as Int32Array;
        const rows = out.logits ? (await out.logits.data()) as Float32Array : null;
        out.tokens.dispose();
        out.logits?.dispose();
        const V = config.vocabSize;
        for (let j = 0; j < block; j++) {
          step++;
          if (rows) opts.onLogits!(rows.slice(j * V, (j + 1) * V), step);
          next = ids[j];
          if (j === block - 1) break; // yielded at the top of the loop
          if (stop.has(next)) return;
          yield next;
          if (step + 1 >= maxTokens || T + step >= config.maxPositionEmbeddings) return;
        }
        continue;
      }
      const out = scope(() => {
        const token = tensor([next], [1], "int32"), at = tensor([pos], [1], "int32");
        return (jitted ? jittedStep : decodeStep)(params, prev, token, at, prefill.rope, config);
      });
      if (!jitted) dispose(prev.layers); // the jitted step consumed them (donated)
      cache = out.cache;
      last = out.logits;
      const logits = (await last.data()) as Float32Array;
      last.dispose();
      last = null;
      step++;
      opts.onLogits?.(logits, step);
      next = (opts.temperature ?? 0) > 0 ? sampleToken(logits, { ...opts, key: foldIn(key, step) }) : argmax(logits);
    }
  } finally {
    if (last && !last.disposed) last.dispose();
    dispose([cache.layers, prefill.rope]);
  }
}
