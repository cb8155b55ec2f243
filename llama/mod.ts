/**
 * knot's neural-network layer: a typed Llama config, layers as pure functions
 * of parameter nodes, RoPE, the Llama forward with a functional KV cache,
 * generation, and random-weight models for tests.
 * @module
 */

export { type LlamaConfig, qkvWidth, type RopeScaling, validateConfig } from "./config.ts";
export { linear, type LinearParams, lowRankDelta, type LowRankUpdate, rmsNorm } from "./layers.ts";
export { applyRope, inverseFrequencies, ropeTables } from "./rope.ts";
export {
  forward,
  type ForwardOptions,
  forwardWithCache,
  type KVCache,
  type LlamaLayerParams,
  type LlamaParams,
  lmHead,
} from "./llama.ts";
export {
  blockCap,
  clearGenerateCache,
  generate,
  type GenerateOptions,
  keptDecodePrograms,
  MAX_BLOCK,
  SMALL_MODEL_BLOCK,
  SMALL_MODEL_PARAMS,
} from "./generate.ts";
export { decodeStep, type FixedKVCache } from "./decode.ts";
export { sampleToken } from "./sample.ts";
export { randomLlama, randomLlamaConfig, type RandomLlamaOptions, TINYSTORIES_15M } from "./tiny.ts";
