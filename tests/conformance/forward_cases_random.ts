/**
 * Forward cases for random numbers: determinism per key, key derivation
 * (split, foldIn), ranges and rough moments on 10,000 samples, bit-exact
 * agreement with threefry2x32, and the published threefry2x32 known answers.
 * @module
 */
import {
  abs,
  cast,
  equal,
  greaterEqual,
  less,
  logicalAnd,
  max,
  mean,
  min,
  sqrt,
  square,
  sub,
  sum,
  type Tensor,
} from "../../mod.ts";
import { bernoulli, foldIn, kaimingUniform, Key, key, normal, split, uniform } from "../../core/random.ts";
import { threefry2x32 } from "../../core/threefry.ts";
import { type ForwardCase, ints } from "./types.ts";

const EXACT = { rtol: 0, atol: 0 };
/** A uint32 word as two 16-bit halves [hi, lo], so it fits in int32 exactly. */
const halves = (words: number[]) => ints(words.flatMap((w) => [w >>> 16, w & 0xffff]));
/** The documented uniform mapping of 32 random bits: 23 mantissa bits under exponent 0. */
const bitsToU = (bits: number) => (bits >>> 9) / 2 ** 23;
const std = (x: Tensor) => sqrt(mean(square(sub(x, mean(x)))));

/** The random-number cases. */
export const RANDOM_CASES: ForwardCase[] = [
  {
    name: "random normal: same key, same numbers",
    run: () => sum(equal(normal(key(42), [1000]), normal(key(42), [1000]))),
    expect: 1000,
    dtype: "int32",
  },
  {
    name: "random uniform: same key, same numbers",
    run: () => sum(equal(uniform(key(42), [1000]), uniform(key(42), [1000]))),
    expect: 1000,
    dtype: "int32",
  },
  {
    name: "random uniform: different keys differ",
    run: () => sum(equal(uniform(key(1), [1000]), uniform(key(2), [1000]))),
    expect: 0,
    dtype: "int32",
  },
  {
    name: "random normal: different keys differ",
    run: () => sum(equal(normal(key(1), [1000]), normal(key(2), [1000]))),
    expect: 0,
    dtype: "int32",
  },
  {
    name: "random uniform default range is [0, 1)",
    run: () => {
      const u = uniform(key(3), [10000]);
      return sum(logicalAnd(greaterEqual(u, 0), less(u, 1)));
    },
    expect: 10000,
    dtype: "int32",
  },
  {
    name: "random uniform within [low, high)",
    run: () => {
      const u = uniform(key(3), [100, 100], { low: -2, high: 3 });
      return sum(logicalAnd(greaterEqual(u, -2), less(u, 3)));
    },
    expect: 10000,
    dtype: "int32",
  },
  {
    name: "random uniform covers its range (min, max near the ends)",
    run: () => {
      const u = uniform(key(4), [10000], { low: -2, high: 3 });
      return [min(u), max(u)];
    },
    expect: [-2, 3],
    tol: { atol: 0.01, rtol: 0 },
  },
  {
    name: "random uniform mean ≈ 0.5 (10k samples)",
    run: () => mean(uniform(key(5), [10000])),
    expect: 0.5,
    tol: { atol: 0.02, rtol: 0 },
  },
  {
    name: "random normal mean ≈ 0 (10k samples)",
    run: () => mean(normal(key(6), [10000])),
    expect: 0,
    tol: { atol: 0.05, rtol: 0 },
  },
  {
    name: "random normal std ≈ 1 (10k samples)",
    run: () => std(normal(key(7), [10000])),
    expect: 1,
    tol: { atol: 0.05, rtol: 0 },
  },
  {
    name: "random normal with mean 3, std 2",
    run: () => {
      const z = normal(key(8), [100, 100], { mean: 3, std: 2 });
      return [mean(z), std(z)];
    },
    expect: [3, 2],
    tol: { atol: 0.1, rtol: 0 },
  },
  {
    // element i uses threefry2x32(key, [0, i]); the words of Key(0, 0) at counter (0, 0) are the KAT below
    name: "random uniform element 0 of Key(0,0) from the threefry known answer",
    run: () => uniform(new Key(0, 0), [1]),
    expect: [bitsToU(0x6b200159)],
    tol: EXACT,
  },
  {
    name: "random uniform follows threefry2x32(key, [0, i]) bit-exactly",
    run: () => uniform(new Key(0x13198a2e, 0x03707344), [2, 4]),
    expect: [0, 1].map((r) => [0, 1, 2, 3].map((c) => bitsToU(threefry2x32(0x13198a2e, 0x03707344, 0, r * 4 + c)[0]))),
    tol: EXACT,
  },
  {
    // Box–Muller on the Key(0,0) KAT words: √(−2 ln(1 − u(x0)))·cos(2π u(x1))
    name: "random normal element 0 of Key(0,0) from the threefry known answer",
    run: () => normal(new Key(0, 0), [1]),
    expect: [Math.sqrt(-2 * Math.log(1 - bitsToU(0x6b200159))) * Math.cos(2 * Math.PI * bitsToU(0x99ba4efe))],
    tol: { rtol: 1e-5, atol: 1e-5 },
  },
  {
    name: "random split is deterministic",
    run: () => sum(equal(uniform(split(key(9), 3)[2], [100]), uniform(split(key(9), 3)[2], [100]))),
    expect: 100,
    dtype: "int32",
  },
  {
    name: "random split keys differ from each other and the parent",
    run: () => {
      const [a, b] = split(key(9));
      const u = (k: Key) => uniform(k, [100]);
      return [sum(equal(u(a), u(b))), sum(equal(u(a), u(key(9)))), sum(equal(u(b), u(key(9))))];
    },
    expect: [0, 0, 0],
    dtype: "int32",
  },
  {
    name: "random foldIn is deterministic",
    run: () => [
      sum(equal(uniform(foldIn(key(9), "layers.0.q"), [100]), uniform(foldIn(key(9), "layers.0.q"), [100]))),
      sum(equal(uniform(foldIn(key(9), 3), [100]), uniform(foldIn(key(9), 3), [100]))),
    ],
    expect: [100, 100],
    dtype: "int32",
  },
  {
    name: "random foldIn with different data differs",
    run: () => [
      sum(equal(uniform(foldIn(key(9), "a"), [100]), uniform(foldIn(key(9), "b"), [100]))),
      sum(equal(uniform(foldIn(key(9), 1), [100]), uniform(foldIn(key(9), 2), [100]))),
    ],
    expect: [0, 0],
    dtype: "int32",
  },
  {
    name: "random bernoulli frequency ≈ p",
    run: () => mean(cast(bernoulli(key(10), 0.3, [10000]), "float32")),
    expect: 0.3,
    tol: { atol: 0.03, rtol: 0 },
  },
  {
    name: "random bernoulli p = 0 and p = 1",
    run: () => [sum(bernoulli(key(11), 0, [100])), sum(bernoulli(key(11), 1, [100]))],
    expect: [0, 100],
    dtype: "int32",
  },
  {
    // default a = √5 gives U(±1/√fanIn) = U(±0.25) for fanIn 16
    name: "random kaimingUniform bound 1/√fanIn",
    run: () => max(abs(kaimingUniform(key(12), [64, 16]))),
    expect: 0.25,
    tol: { atol: 0.01, rtol: 0 },
  },
  // Published Random123 / JAX known-answer vectors, words split into 16-bit halves [hi, lo].
  {
    name: "threefry2x32 KAT key 0 counter 0",
    run: () => halves(threefry2x32(0, 0, 0, 0)),
    expect: [0x6b20, 0x0159, 0x99ba, 0x4efe],
    dtype: "int32",
  },
  {
    name: "threefry2x32 KAT key ones counter ones",
    run: () => halves(threefry2x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff)),
    expect: [0x1cb9, 0x96fc, 0xbb00, 0x2be7],
    dtype: "int32",
  },
  {
    name: "threefry2x32 KAT key pi digits",
    run: () => halves(threefry2x32(0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3)),
    expect: [0xc492, 0x3a9c, 0x483d, 0xf7a0],
    dtype: "int32",
  },
];
