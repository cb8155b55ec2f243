import assert from "node:assert/strict";
import { matmulF32 } from "../backends/cpu/matmul.ts";

/** Deterministic values in [-1, 1) (xorshift32), so failures reproduce. */
function rand(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    x[i] = (s >>> 0) / 2147483648 - 1;
  }
  return x;
}

/** Straightforward reference: element-wise definition, float64 sums. */
function reference(
  a: Float32Array,
  aOff: number,
  b: Float32Array,
  bOff: number,
  M: number,
  K: number,
  N: number,
  transA: boolean,
  transB: boolean,
): Float64Array {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let p = 0; p < K; p++) {
        const av = transA ? a[aOff + p * M + i] : a[aOff + i * K + p];
        const bv = transB ? b[bOff + j * K + p] : b[bOff + p * N + j];
        s += av * bv;
      }
      out[i * N + j] = s;
    }
  }
  return out;
}

/**
 * Checks |got − ref| ≤ 1e-4 · (Σ|a·b| + 1e-3) per element: relative to the
 * magnitude of the terms, so float32 rounding passes but any wrong term fails.
 */
function check(
  M: number,
  K: number,
  N: number,
  transA: boolean,
  transB: boolean,
  offs: { a: number; b: number; out: number } = { a: 0, b: 0, out: 0 },
): void {
  const a = rand(offs.a + M * K + 3, M * 31 + K * 7 + N);
  const b = rand(offs.b + K * N + 3, N * 17 + K * 5 + M + 1);
  const sentinel = 12345.5;
  const out = new Float32Array(offs.out + M * N + 5).fill(sentinel);
  matmulF32(a, offs.a, b, offs.b, out, offs.out, M, K, N, transA, transB);
  const ref = reference(a, offs.a, b, offs.b, M, K, N, transA, transB);
  const absA = a.map(Math.abs), absB = b.map(Math.abs);
  const mag = reference(absA, offs.a, absB, offs.b, M, K, N, transA, transB);
  const tag = `${M}x${K}x${N} tA=${transA} tB=${transB} offs=${JSON.stringify(offs)}`;
  for (let i = 0; i < M * N; i++) {
    const got = out[offs.out + i];
    const tol = 1e-4 * (mag[i] + 1e-3);
    if (!(Math.abs(got - ref[i]) <= tol)) {
      assert.fail(`${tag}: out[${i}] = ${got}, expected ${ref[i]} (tol ${tol})`);
    }
  }
  // Nothing outside out[outOff, outOff + M*N) may be touched.
  for (let i = 0; i < offs.out; i++) assert.equal(out[i], sentinel, `${tag}: wrote before outOff`);
  for (let i = offs.out + M * N; i < out.length; i++) {
    assert.equal(out[i], sentinel, `${tag}: wrote past the end`);
  }
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 0, 1],
  [3, 0, 5],
  [2, 3, 4],
  [4, 4, 4],
  [5, 5, 5],
  [7, 13, 5],
  [1, 17, 9],
  [9, 17, 1],
  [1, 300, 1],
  [2, 7, 3],
  [3, 2, 7],
  [33, 65, 17],
  [64, 64, 64],
  [100, 3, 250],
  [131, 257, 67], // crosses the M-block (128) and K-block (256)
  [6, 513, 10], // three K-blocks, ragged tiles
];
const TRANS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

for (const [transA, transB] of TRANS) {
  Deno.test(`matmulF32 matches reference, transA=${transA} transB=${transB}`, () => {
    for (const [M, K, N] of SHAPES) check(M, K, N, transA, transB);
  });
  Deno.test(`matmulF32 honours offsets, transA=${transA} transB=${transB}`, () => {
    for (const [M, K, N] of SHAPES) check(M, K, N, transA, transB, { a: 3, b: 11, out: 7 });
  });
}

Deno.test("matmulF32 with K = 0 writes zeros (not stale values)", () => {
  const out = new Float32Array(2 + 12).fill(9);
  matmulF32(new Float32Array(0), 0, new Float32Array(0), 0, out, 2, 3, 0, 4, false, false);
  assert.deepEqual(Array.from(out.subarray(2)), new Array(12).fill(0));
  assert.deepEqual(Array.from(out.subarray(0, 2)), [9, 9]);
});

Deno.test("matmulF32 with M = 0 or N = 0 writes nothing", () => {
  const out = new Float32Array(4).fill(9);
  matmulF32(new Float32Array(6), 0, new Float32Array(6), 0, out, 0, 0, 3, 2, false, false);
  matmulF32(new Float32Array(6), 0, new Float32Array(6), 0, out, 0, 2, 3, 0, true, true);
  assert.deepEqual(Array.from(out), [9, 9, 9, 9]);
});

Deno.test("matmulF32 small exact example", () => {
  // [[1,2,3],[4,5,6]] · [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  const b = new Float32Array([7, 8, 9, 10, 11, 12]);
  const out = new Float32Array(4);
  matmulF32(a, 0, b, 0, out, 0, 2, 3, 2, false, false);
  assert.deepEqual(Array.from(out), [58, 64, 139, 154]);
  // Same product from transposed storage: Aᵀ stored [3,2], Bᵀ stored [2,3].
  const at = new Float32Array([1, 4, 2, 5, 3, 6]);
  const bt = new Float32Array([7, 9, 11, 8, 10, 12]);
  out.fill(0);
  matmulF32(at, 0, bt, 0, out, 0, 2, 3, 2, true, true);
  assert.deepEqual(Array.from(out), [58, 64, 139, 154]);
});

Deno.test("matmulF32 overwrites out and is stable across calls (scratch reuse)", () => {
  // A large call grows the scratch; a smaller call afterwards must not see
  // stale packed data, and calling twice must not accumulate.
  check(200, 300, 140, false, false);
  check(5, 9, 6, true, false);
  const a = rand(12, 1), b = rand(12, 2);
  const out1 = new Float32Array(9), out2 = new Float32Array(9);
  matmulF32(a, 0, b, 0, out1, 0, 3, 4, 3, false, false);
  matmulF32(a, 0, b, 0, out2, 0, 3, 4, 3, false, false);
  matmulF32(a, 0, b, 0, out2, 0, 3, 4, 3, false, false);
  assert.deepEqual(out2, out1);
});

Deno.test("matmulF32 batched calls via offsets", () => {
  const batch = 3, M = 5, K = 6, N = 7;
  const a = rand(batch * M * K, 42), b = rand(batch * K * N, 43);
  const out = new Float32Array(batch * M * N);
  for (let t = 0; t < batch; t++) {
    matmulF32(a, t * M * K, b, t * K * N, out, t * M * N, M, K, N, false, false);
  }
  for (let t = 0; t < batch; t++) {
    const ref = reference(a, t * M * K, b, t * K * N, M, K, N, false, false);
    for (let i = 0; i < M * N; i++) {
      assert.ok(Math.abs(out[t * M * N + i] - ref[i]) < 1e-5, `batch ${t} elem ${i}`);
    }
  }
});
