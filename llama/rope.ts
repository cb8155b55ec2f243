/**
 * Rotary position embeddings in the Hugging Face "rotate half" convention:
 * element i of a head pairs with element i + headDim/2. Frequencies follow
 * `rope_theta`, optionally scaled (linear, or Llama 3's piecewise rule).
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { add, mul, neg } from "../core/ops/elementwise.ts";
import { concat, slice } from "../core/ops/movement.ts";
import { tensor } from "../core/ops/creation.ts";
import type { LlamaConfig } from "./config.ts";

/** The inverse frequencies θ^(−2i/headDim), i < headDim/2, after `ropeScaling`. */
export function inverseFrequencies(config: LlamaConfig): Float64Array {
  const half = config.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
  const s = config.ropeScaling;
  if (s?.type === "linear") { for (let i = 0; i < half; i++) inv[i] /= s.factor; }
  if (s?.type === "llama3") {
    // Long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] /= s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/** cos and sin tables [positions.length, headDim] for the given absolute positions. */
export function ropeTables(config: LlamaConfig, positions: readonly number[]): { cos: Tensor; sin: Tensor } {
  const inv = inverseFrequencies(config);
  const hd = config.headDim, half = hd / 2;
  const c = new Float32Array(positions.length * hd), s = new Float32Array(positions.length * hd);
  positions.forEach((p, t) => {
    for (let i = 0; i < half; i++) {
      // Computed in float32 like the reference implementations (freqs = pos·inv_freq in fp32).
      const angle = Math.fround(p * Math.fround(inv[i]));
      c[t * hd + i] = c[t * hd + i + half] = Math.cos(angle);
      s[t * hd + i] = s[t * hd + i + half] = Math.sin(angle);
    }
  });
  return { cos: tensor(c, [positions.length, hd]), sin: tensor(s, [positions.length, hd]) };
}

/** Applies RoPE to x [..., T, headDim] with tables [T, headDim]: x·cos + rotateHalf(x)·sin. */
export function applyRope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const hd = x.shape[x.rank - 1], half = hd / 2;
  const start = x.shape.map(() => 0);
  const x1 = slice(x, start, [...x.shape.slice(0, -1), half]);
  const x2 = slice(x, [...start.slice(0, -1), half]);
  const rotated = concat([neg(x2), x1], -1);
  return add(mul(x, cos), mul(rotated, sin));
}
