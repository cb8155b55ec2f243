/**
 * Random-weight Llama models built in code, for tests, examples and
 * benchmarks that must not depend on a downloaded checkpoint. Every leaf is
 * drawn from its own key, `foldIn(key(seed), path)`, so a leaf's values
 * depend only on the seed, its path and its shape.
 *
 * @example
 * ```ts
 * import { randomLlama, randomLlamaConfig, TINYSTORIES_15M } from "./mod.ts";
 * const tiny = randomLlama({ seed: 1 }); // 2 layers, d=64, GQA 4/2, vocab 256, tied
 * const untied = randomLlama({ seed: 1, tieWordEmbeddings: false, numLayers: 1 });
 * const shape15M = randomLlamaConfig(TINYSTORIES_15M); // dim 288, 6 layers, vocab 32000 (weights: randomLlama)
 * ```
 * @module
 */
import { foldIn, kaimingUniform, type Key, key, normal } from "../core/random.ts";
import { add } from "../core/ops/elementwise.ts";
import type { Tensor } from "../core/tensor.ts";
import { type LlamaConfig, validateConfig } from "./config.ts";
import type { LlamaLayerParams, LlamaParams } from "./llama.ts";

/** Options of {@link randomLlama}: any config field, plus the seed (default 0). */
export type RandomLlamaOptions = Partial<LlamaConfig> & {
  /** Seed of the weights (default 0). */
  seed?: number;
  /** Std of the embedding matrix (default 1/√hiddenSize, so tied logits have std ≈ 1). */
  embedStd?: number;
};

/**
 * The shape of Karpathy's TinyStories-15M (llama2.c `stories15M`): dim 288,
 * 6 layers, 6 heads (no GQA), hidden 768, vocab 32000, 256 positions.
 */
export const TINYSTORIES_15M: Readonly<Partial<LlamaConfig>> = Object.freeze({
  vocabSize: 32000,
  hiddenSize: 288,
  intermediateSize: 768,
  numLayers: 6,
  numHeads: 6,
  numKvHeads: 6,
  headDim: 48,
  maxPositionEmbeddings: 256,
  tieWordEmbeddings: true,
});

/**
 * The full config {@link randomLlama} builds from partial options. Defaults: 2
 * layers, hiddenSize 64, 4 query heads over 2 KV heads, headDim
 * hiddenSize/numHeads (16), intermediate 128, vocab 256, 256 positions, tied
 * embeddings, BOS 1, EOS 2. When `numHeads` is given without `numKvHeads`,
 * there is one KV head per query head (as in HF's LlamaConfig).
 */
export function randomLlamaConfig(opts: RandomLlamaOptions = {}): LlamaConfig {
  const { seed: _seed, embedStd: _std, ...rest } = opts;
  // Fields passed as undefined keep their defaults.
  const given = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Partial<LlamaConfig>;
  const hiddenSize = given.hiddenSize ?? 64;
  const numHeads = given.numHeads ?? 4;
  const config: LlamaConfig = {
    vocabSize: 256,
    intermediateSize: 128,
    numLayers: 2,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositionEmbeddings: 256,
    tieWordEmbeddings: true,
    bosTokenId: 1,
    eosTokenId: 2,
    ...given,
    hiddenSize,
    numHeads,
    numKvHeads: given.numKvHeads ?? (given.numHeads === undefined ? 2 : numHeads),
    headDim: given.headDim ?? hiddenSize / numHeads,
  };
  return validateConfig(config, "randomLlama");
}

/**
 * A random-weight Llama: linear weights kaiming-uniform (torch.nn.Linear's
 * default), the embedding normal with std `embedStd`, RMSNorm weights
 * 1 + N(0, 0.1²) (not exactly one, so that a forward ignoring them is caught).
 */
export function randomLlama(opts: RandomLlamaOptions = {}): { config: LlamaConfig; params: LlamaParams } {
  const config = randomLlamaConfig(opts);
  const root = key(opts.seed ?? 0);
  const k = (path: string): Key => foldIn(root, path);
  const d = config.hiddenSize, hd = config.headDim, f = config.intermediateSize;
  const lin = (path: string, out: number, inp: number) => ({ weight: kaimingUniform(k(`${path}.weight`), [out, inp]) });
  const norm = (path: string): { weight: Tensor } => ({
    weight: add(normal(k(`${path}.weight`), [d], { std: 0.1 }), 1),
  });
  const layers: LlamaLayerParams[] = Array.from({ length: config.numLayers }, (_, i) => {
    const p = `layers.${i}`;
    return {
      attnNorm: norm(`${p}.attnNorm`),
      attn: {
        q: lin(`${p}.attn.q`, config.numHeads * hd, d),
        k: lin(`${p}.attn.k`, config.numKvHeads * hd, d),
        v: lin(`${p}.attn.v`, config.numKvHeads * hd, d),
        o: lin(`${p}.attn.o`, d, config.numHeads * hd),
      },
      mlpNorm: norm(`${p}.mlpNorm`),
      mlp: { gate: lin(`${p}.mlp.gate`, f, d), up: lin(`${p}.mlp.up`, f, d), down: lin(`${p}.mlp.down`, d, f) },
    };
  });
  const params: LlamaParams = {
    embed: { weight: normal(k("embed.weight"), [config.vocabSize, d], { std: opts.embedStd ?? 1 / Math.sqrt(d) }) },
    layers,
    norm: norm("norm"),
  };
  if (!config.tieWordEmbeddings) params.lmHead = lin("lmHead", config.vocabSize, d);
  return { config, params };
}
