/**
 * The typed configuration of a Llama-style model (independent of any file
 * format; io/hf.ts reads it from a Hugging Face config.json).
 * @module
 */

/** RoPE frequency scaling, as in HF's `rope_scaling`. */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };

/** Shapes and constants of a Llama-style decoder. */
export interface LlamaConfig {
  /** Number of token ids. */
  vocabSize: number;
  /** Model width d. */
  hiddenSize: number;
  /** MLP width (gate and up projections). */
  intermediateSize: number;
  /** Number of transformer layers. */
  numLayers: number;
  /** Number of query heads. */
  numHeads: number;
  /** Number of key/value heads (fewer than numHeads: grouped-query attention). */
  numKvHeads: number;
  /** Width of one head. */
  headDim: number;
  /** Epsilon of RMSNorm. */
  rmsNormEps: number;
  /** RoPE base frequency. */
  ropeTheta: number;
  /** RoPE frequency scaling (llama3, linear), or null. */
  ropeScaling: RopeScaling | null;
  /** Longest sequence the model was trained for. */
  maxPositionEmbeddings: number;
  /** The LM head reuses the token embedding. */
  tieWordEmbeddings: boolean;
  /** Beginning-of-sequence token id, if any. */
  bosTokenId: number | null;
  /** End-of-sequence token id(s), if any. */
  eosTokenId: number | readonly number[] | null;
}

/**
 * Bounds on each size, generous next to every released Llama-style model
 * (Llama 3.1 405B: 126 layers, hidden 16384, 128 heads, FFN 53248; vocabularies
 * reach 262144; contexts 10M positions). A config outside them is refused
 * before anything is sized from it: `num_hidden_layers: 1e308` is an integer,
 * and without a bound the tensor table alone would exhaust memory.
 */
export const CONFIG_BOUNDS: Readonly<Record<SizeField, number>> = Object.freeze({
  vocabSize: 2 ** 22,
  hiddenSize: 2 ** 17,
  intermediateSize: 2 ** 19,
  numLayers: 2 ** 12,
  numHeads: 2 ** 12,
  numKvHeads: 2 ** 12,
  headDim: 2 ** 12,
  maxPositionEmbeddings: 2 ** 27,
});

type SizeField =
  | "vocabSize"
  | "hiddenSize"
  | "intermediateSize"
  | "numLayers"
  | "numHeads"
  | "numKvHeads"
  | "headDim"
  | "maxPositionEmbeddings";

/** The largest rms_norm_eps accepted: above it the norm no longer normalises (1e300 zeroes every logit). */
export const MAX_RMS_NORM_EPS = 0.1;

function finite(c: unknown, where: string, name: string, test: (v: number) => boolean, expected: string): void {
  if (typeof c !== "number" || !Number.isFinite(c) || !test(c)) {
    throw new Error(`${where}: ${name} must be ${expected}, got ${c}`);
  }
}

function tokenIds(v: unknown, vocab: number, where: string, name: string): void {
  if (v === null) return;
  const ids = Array.isArray(v) ? v : [v];
  if (Array.isArray(v) && v.length > 1024) throw new Error(`${where}: ${name} lists ${v.length} ids (at most 1024)`);
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new Error(`${where}: ${name} must be a token id in [0, ${vocab}) (vocabSize), got ${JSON.stringify(id)}`);
    }
  }
}

/**
 * Throws unless the config's numbers are consistent (names the offending
 * field): every size a positive integer within {@link CONFIG_BOUNDS}, heads
 * divisible by KV heads, an even head dimension, 0 < rmsNormEps ≤ 0.1, a
 * finite ropeTheta > 1, RoPE scaling factors that keep every frequency finite
 * and positive, and BOS/EOS ids inside the vocabulary.
 */
export function validateConfig(c: LlamaConfig, where = "LlamaConfig"): LlamaConfig {
  if (c === null || typeof c !== "object") throw new Error(`${where}: expected a config object, got ${c}`);
  for (const [k, max] of Object.entries(CONFIG_BOUNDS) as [SizeField, number][]) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new Error(`${where}: ${k} must be a positive integer, got ${c[k]}`);
    if (c[k] > max) {
      throw new Error(`${where}: ${k} is ${c[k]}, over the bound of ${max} (no known model is this large)`);
    }
  }
  if (c.numKvHeads > c.numHeads || c.numHeads % c.numKvHeads !== 0) {
    throw new Error(`${where}: numHeads (${c.numHeads}) must be a multiple of numKvHeads (${c.numKvHeads})`);
  }
  if (c.headDim % 2 !== 0) throw new Error(`${where}: headDim must be even for RoPE, got ${c.headDim}`);
  finite(c.rmsNormEps, where, "rmsNormEps", (v) => v > 0 && v <= MAX_RMS_NORM_EPS, `in (0, ${MAX_RMS_NORM_EPS}]`);
  finite(c.ropeTheta, where, "ropeTheta", (v) => v > 1, "a finite number > 1");
  const s = c.ropeScaling;
  if (s !== null && s !== undefined) {
    const w = `${where}: ropeScaling`;
    if (typeof s !== "object") throw new Error(`${w} must be an object or null, got ${JSON.stringify(s)}`);
    // A factor below 1 would speed positions up; 0 or a negative divides every frequency into NaN/Infinity.
    finite(s.factor, w, "factor", (v) => v >= 1 && v <= 1e6, "a finite number in [1, 1e6]");
    if (s.type === "llama3") {
      finite(s.lowFreqFactor, w, "lowFreqFactor", (v) => v > 0, "a finite number > 0");
      finite(s.highFreqFactor, w, "highFreqFactor", (v) => v > s.lowFreqFactor, `a finite number > lowFreqFactor`);
      finite(
        s.originalMaxPositionEmbeddings,
        w,
        "originalMaxPositionEmbeddings",
        (v) => Number.isInteger(v) && v > 0 && v <= CONFIG_BOUNDS.maxPositionEmbeddings,
        "a positive integer",
      );
    } else if (s.type !== "linear") {
      throw new Error(`${w}: type ${JSON.stringify((s as { type: unknown }).type)} is not "linear" or "llama3"`);
    }
  }
  if (typeof c.tieWordEmbeddings !== "boolean") {
    throw new Error(`${where}: tieWordEmbeddings must be a boolean, got ${c.tieWordEmbeddings}`);
  }
  tokenIds(c.bosTokenId, c.vocabSize, where, "bosTokenId");
  tokenIds(c.eosTokenId, c.vocabSize, where, "eosTokenId");
  return c;
}

/** Width of the fused Q|K|V output: hidden + 2·numKvHeads·headDim (m in the Tied-LoRA paper). */
export function qkvWidth(c: LlamaConfig): number {
  return c.numHeads * c.headDim + 2 * c.numKvHeads * c.headDim;
}
