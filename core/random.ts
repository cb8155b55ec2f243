/**
 * Functional randomness with explicit keys, as in JAX. A key is two uint32
 * words; `split` derives independent keys; every sampler is a pure function
 * of (key, shape). Bits come from the counter-based threefry2x32 generator
 * (20 rounds), computed the same way on every backend:
 *
 * - element i of a draw uses threefry2x32(key, [0, i]) → words (x0, x1);
 * - uniform: bits of x0 with exponent of 1.0, minus 1 → [0, 1) (exact on every backend);
 * - normal: Box–Muller, u1 = 1 − uniform(x0) ∈ (0, 1], u2 = uniform(x1),
 *   z = √(−2 ln u1)·cos(2π u2) (equal across backends up to their log/cos rounding);
 * - split(key, n)[j] = threefry2x32(key, [1, j]); foldIn(key, d) = threefry2x32(key, [2, d]).
 * @module
 */
import type { DType } from "./dtype.ts";
import { threefry2x32 } from "./threefry.ts";
import { getBackend } from "./runtime.ts";
import { checkShape, fmt, type Shape, sizeOf } from "./shape.ts";
import { fromBuffer, type Tensor } from "./tensor.ts";
import { add, cast, less, mul } from "./ops/elementwise.ts";
import { checkAlloc } from "./ops/_util.ts";

/** A PRNG key: two uint32 words. Immutable; derive new keys with {@link split} or {@link foldIn}. */
export class Key {
  /** A key from its two uint32 words (use {@link key} for a key from a seed). */
  constructor(readonly k0: number, readonly k1: number) {
    if (!Number.isInteger(k0) || !Number.isInteger(k1) || k0 < 0 || k1 < 0 || k0 > 0xffffffff || k1 > 0xffffffff) {
      throw new Error(`Key: words must be uint32, got ${k0}, ${k1}`);
    }
  }
  /** The two words, for backends. */
  get words(): [number, number] {
    return [this.k0, this.k1];
  }
  /** `Key(k0, k1)` */
  toString(): string {
    return `Key(${this.k0}, ${this.k1})`;
  }
}

/** A key from an integer seed (0 ≤ seed < 2^32). */
export function key(seed: number): Key {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`key: seed must be an integer in [0, 2^32), got ${seed}`);
  }
  return new Key(0, seed);
}

/** The most keys one {@link split} call returns (2^20); {@link foldIn} derives any number lazily. */
const MAX_SPLIT = 2 ** 20;

/** `n` new independent keys derived from `k` (default 2; at most 2^20). */
export function split(k: Key, n = 2): Key[] {
  if (!(k instanceof Key)) throw new Error(`split: expected a Key, got ${typeof k}`);
  // Each key is a JS object: a million of them is already ~50 MB; 1e9 would run for a minute and then exhaust memory.
  if (!Number.isInteger(n) || n < 0 || n > MAX_SPLIT) {
    throw new Error(
      `split: n must be an integer in [0, ${MAX_SPLIT}], got ${n} (draw keys lazily with foldIn(key, i))`,
    );
  }
  return Array.from({ length: n }, (_, j) => new Key(...threefry2x32(k.k0, k.k1, 1, j)));
}

/** A key derived from `k` and an integer or string (e.g. a parameter path). */
export function foldIn(k: Key, data: number | string): Key {
  const d = typeof data === "number" ? data >>> 0 : fnv1a(data);
  return new Key(...threefry2x32(k.k0, k.k1, 2, d));
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(s)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

function draw(op: string, kind: "uniform" | "normal", k: Key, shape: Shape): Tensor {
  if (!(k instanceof Key)) throw new Error(`${op}: expected a Key as first argument (use key(seed)), got ${typeof k}`);
  checkShape(op, shape);
  const backend = getBackend();
  checkAlloc(op, backend, shape, "float32");
  return fromBuffer(backend, backend.random(kind, k.words, sizeOf(shape)), shape, "float32");
}

/** Normal samples N(mean, std²). */
export function normal(k: Key, shape: Shape, opts: { mean?: number; std?: number } = {}): Tensor {
  const z = draw("normal", "normal", k, shape);
  const { mean = 0, std = 1 } = opts;
  return mean === 0 && std === 1 ? z : add(mul(z, std), mean);
}

/** Uniform samples in [low, high). */
export function uniform(k: Key, shape: Shape, opts: { low?: number; high?: number } = {}): Tensor {
  const { low = 0, high = 1 } = opts;
  if (!(high > low)) throw new Error(`uniform: need low < high, got low=${low} high=${high}`);
  const u = draw("uniform", "uniform", k, shape);
  return low === 0 && high === 1 ? u : add(mul(u, high - low), low);
}

/**
 * Kaiming-uniform init, as PyTorch's `kaiming_uniform_(w, a)`: U(±gain·√(3/fanIn))
 * with gain = √(2/(1+a²)). The default a = √5 is torch.nn.Linear's default,
 * giving U(±1/√fanIn). `fanIn` defaults to the last axis (weights stored [out, in]).
 */
export function kaimingUniform(k: Key, shape: Shape, opts: { a?: number; fanIn?: number } = {}): Tensor {
  const { a = Math.sqrt(5), fanIn = shape[shape.length - 1] } = opts;
  if (!(fanIn > 0)) throw new Error(`kaimingUniform: fan-in must be positive for shape ${fmt(shape)}, got ${fanIn}`);
  const bound = Math.sqrt(2 / (1 + a * a)) * Math.sqrt(3 / fanIn);
  return uniform(k, shape, { low: -bound, high: bound });
}

/** Bernoulli samples: true with probability `p` (bool, or the given dtype). */
export function bernoulli(k: Key, p: number, shape: Shape, dtype: DType = "bool"): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`bernoulli: p must be in [0, 1], got ${p}`);
  return cast(less(draw("bernoulli", "uniform", k, shape), p), dtype);
}
