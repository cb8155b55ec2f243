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
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenId: number | readonly number[] | null;
}

/** Throws unless the config's numbers are consistent (names the offending field). */
export function validateConfig(c: LlamaConfig, where = "LlamaConfig"): LlamaConfig {
  const positive = [
    "vocabSize",
    "hiddenSize",
    "intermediateSize",
    "numLayers",
    "numHeads",
    "numKvHeads",
    "headDim",
    "maxPositionEmbeddings",
  ] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) throw new Error(`${where}: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.numHeads % c.numKvHeads !== 0) {
    throw new Error(`${where}: numHeads (${c.numHeads}) must be a multiple of numKvHeads (${c.numKvHeads})`);
  }
  if (c.headDim % 2 !== 0) throw new Error(`${where}: headDim must be even for RoPE, got ${c.headDim}`);
  if (!(c.rmsNormEps > 0)) throw new Error(`${where}: rmsNormEps must be positive, got ${c.rmsNormEps}`);
  if (!(c.ropeTheta > 0)) throw new Error(`${where}: ropeTheta must be positive, got ${c.ropeTheta}`);
  return c;
}

/** Width of the fused Q|K|V output: hidden + 2·numKvHeads·headDim (m in the Tied-LoRA paper). */
export function qkvWidth(c: LlamaConfig): number {
  return c.numHeads * c.headDim + 2 * c.numKvHeads * c.headDim;
}
