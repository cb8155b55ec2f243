import assert from "node:assert/strict";
import { matmulF32, matmulF32Ts, WASM_MIN_MNK } from "../backends/cpu/matmul.ts";
import { matmulF32Wasm, wasmMatmulAvailable, wasmMatmulBuild, wasmMatmulVariant } from "../backends/cpu/wasm/kernel.ts";

type MatmulFn = typeof matmulF32;

const WASM_SIMD = wasmMatmulBuild("simd");
const WASM_FMA = wasmMatmulBuild("fma");

/**
 * Every kernel is checked on every case: the dispatching entry point, the
 * TypeScript kernel and both WebAssembly builds (where they load; the plain
 * SIMD one always should in Deno, which a separate test asserts).
 */
const KERNELS: [string, MatmulFn][] = [
  ["matmulF32", matmulF32],
  ["ts", matmulF32Ts],
  ...(WASM_SIMD ? [["wasm-simd", WASM_SIMD] as [string, MatmulFn]] : []),
  ...(WASM_FMA ? [["wasm-fma", WASM_FMA] as [string, MatmulFn]] : []),
];

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
  const ref = reference(a, offs.a, b, offs.b, M, K, N, transA, transB);
  const absA = a.map(Math.abs), absB = b.map(Math.abs);
  const mag = reference(absA, offs.a, absB, offs.b, M, K, N, transA, transB);
  const sentinel = 12345.5;
  for (const [name, fn] of KERNELS) {
    const out = new Float32Array(offs.out + M * N + 5).fill(sentinel);
    fn(a, offs.a, b, offs.b, out, offs.out, M, K, N, transA, transB);
    const tag = `${name} ${M}x${K}x${N} tA=${transA} tB=${transB} offs=${JSON.stringify(offs)}`;
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
  [0, 5, 7],
  [4, 6, 0],
  [0, 0, 0],
  [8, 8, 8], // exactly one wasm tile pair, around the dispatch threshold
  [13, 31, 7], // primes
  [67, 129, 45], // ragged in every direction, above the dispatch threshold
  [97, 53, 101],
  [128, 256, 64], // whole tiles and blocks
  [5, 3, 2053], // crosses the wasm N-block (2048)
];
const TRANS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];

for (const [transA, transB] of TRANS) {
  Deno.test(`matmul kernels match reference, transA=${transA} transB=${transB}`, () => {
    for (const [M, K, N] of SHAPES) check(M, K, N, transA, transB);
  });
  Deno.test(`matmul kernels honour offsets, transA=${transA} transB=${transB}`, () => {
    for (const [M, K, N] of SHAPES) check(M, K, N, transA, transB, { a: 3, b: 11, out: 7 });
  });
}

Deno.test("WebAssembly SIMD matmul kernel loads in Deno", () => {
  assert.ok(wasmMatmulAvailable() && WASM_SIMD, "wasm SIMD kernel unavailable: matmulF32 would run ~5× slower");
  assert.equal(wasmMatmulVariant(), WASM_FMA ? "fma" : "simd");
});

/** Bit digests of a few products on each available wasm build (run in-process and in subprocesses). */
function wasmDigests(build: typeof wasmMatmulBuild): Record<string, number[]> {
  const res: Record<string, number[]> = {};
  for (const variant of ["simd", "fma"] as const) {
    const fn = build(variant);
    if (!fn) continue;
    res[variant] = [];
    for (const [M, K, N, tA, tB] of [[37, 300, 45, false, true], [64, 64, 64, true, false]] as const) {
      const a = rand(M * K, 11), b = rand(K * N, 12), out = new Float32Array(M * N);
      fn(a, 0, b, 0, out, 0, M, K, N, tA, tB);
      let h = 0;
      for (const w of new Uint32Array(out.buffer)) h = (Math.imul(h, 31) + w) | 0;
      res[variant].push(h);
    }
  }
  return res;
}

Deno.test({
  name: "wasm kernels give identical bits in V8's Liftoff and TurboFan tiers (relaxed_madd fuses in both)",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  async fn() {
    const url = new URL("../backends/cpu/wasm/kernel.ts", import.meta.url).href;
    const code = `import { wasmMatmulBuild } from "${url}";\n${rand}\n${wasmDigests}\n` +
      `console.log(JSON.stringify(wasmDigests(wasmMatmulBuild)));`;
    const want = wasmDigests(wasmMatmulBuild);
    for (const flag of ["--liftoff-only", "--no-liftoff"]) {
      const { code: rc, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["eval", `--v8-flags=${flag}`, code],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      assert.equal(rc, 0, dec.decode(stderr));
      assert.deepEqual(JSON.parse(dec.decode(stdout)), want, `V8 ${flag}`);
    }
  },
});

Deno.test({
  name: "fallbacks: no relaxed-simd → plain SIMD build; no SIMD at all → TypeScript kernel",
  ignore: Deno.permissions.querySync({ name: "run" }).state !== "granted",
  async fn() {
    // Each case runs in a fresh process whose WebAssembly.validate rejects the
    // named modules, then reports which build matmulF32 picked and whether
    // its bits equal those of the expected kernel.
    const dir = new URL("../backends/cpu/", import.meta.url).href;
    const cases = [
      { reject: "FMA", variant: "simd", same: "wasmMatmulBuild('simd')" },
      { reject: "ALL", variant: null, same: "matmulF32Ts" },
    ];
    for (const c of cases) {
      const code = `
        import { ENGINE_WASM_FMA_BASE64, ENGINE_WASM_FMA_SHARED_BASE64 } from "${dir}wasm/engine_wasm.ts";
        const fma = [atob(ENGINE_WASM_FMA_BASE64), atob(ENGINE_WASM_FMA_SHARED_BASE64)];
        const validate = WebAssembly.validate;
        WebAssembly.validate = (b) =>
          "${c.reject}" === "ALL" ? false : fma.includes(String.fromCharCode(...b)) ? false : validate(b);
        const { matmulF32, matmulF32Ts } = await import("${dir}matmul.ts");
        const { wasmMatmulBuild, wasmMatmulVariant } = await import("${dir}wasm/kernel.ts");
        const M = 37, K = 70, N = 29, a = new Float32Array(M * K), b = new Float32Array(K * N);
        for (let i = 0; i < a.length; i++) a[i] = Math.sin(i);
        for (let i = 0; i < b.length; i++) b[i] = Math.cos(i);
        const got = new Float32Array(M * N), want = new Float32Array(M * N);
        matmulF32(a, 0, b, 0, got, 0, M, K, N, false, true);
        (${c.same})(a, 0, b, 0, want, 0, M, K, N, false, true);
        console.log(JSON.stringify({ variant: wasmMatmulVariant(), same: got.every((x, i) => Object.is(x, want[i])) }));`;
      const { code: rc, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      assert.equal(rc, 0, dec.decode(stderr));
      assert.deepEqual(JSON.parse(dec.decode(stdout)), { variant: c.variant, same: true }, `reject ${c.reject}`);
    }
  },
});

Deno.test("matmul kernels with K = 0 write zeros (not stale values)", () => {
  for (const [name, fn] of KERNELS) {
    for (const [M, N] of [[3, 4], [1, 5], [40, 30]]) {
      const out = new Float32Array(2 + M * N).fill(9);
      fn(new Float32Array(0), 0, new Float32Array(0), 0, out, 2, M, 0, N, false, false);
      assert.deepEqual(Array.from(out.subarray(2)), new Array(M * N).fill(0), `${name} ${M}x0x${N}`);
      assert.deepEqual(Array.from(out.subarray(0, 2)), [9, 9], name);
    }
  }
});

Deno.test("matmul kernels with M = 0 or N = 0 write nothing", () => {
  for (const [name, fn] of KERNELS) {
    const out = new Float32Array(4).fill(9);
    fn(new Float32Array(6), 0, new Float32Array(6), 0, out, 0, 0, 3, 2, false, false);
    fn(new Float32Array(6), 0, new Float32Array(6), 0, out, 0, 2, 3, 0, true, true);
    fn(new Float32Array(0), 0, new Float32Array(0), 0, out, 0, 0, 0, 0, false, true);
    assert.deepEqual(Array.from(out), [9, 9, 9, 9], name);
  }
});

Deno.test("matmulF32 dispatches: wasm above the threshold, TS below and for vectors", () => {
  // The two kernels round differently (float32 vs float64 accumulation), so
  // the exact bits tell which one ran.
  const same = (fn: MatmulFn, M: number, K: number, N: number, tA: boolean, tB: boolean): boolean => {
    const a = rand(M * K, 5), b = rand(K * N, 6);
    const got = new Float32Array(M * N), want = new Float32Array(M * N);
    matmulF32(a, 0, b, 0, got, 0, M, K, N, tA, tB);
    fn(a, 0, b, 0, want, 0, M, K, N, tA, tB);
    return got.every((x, i) => Object.is(x, want[i]));
  };
  assert.ok(same(matmulF32Ts, 4, 4, 4, false, false), "4x4x4 should run in TS");
  assert.ok(same(matmulF32Ts, 1, 300, 70, false, true), "M = 1 should run in TS");
  assert.ok(same(matmulF32Ts, 70, 300, 1, true, false), "N = 1 should run in TS");
  if (!wasmMatmulAvailable()) return;
  assert.ok(4 * 8 * 8 >= WASM_MIN_MNK);
  assert.ok(same(matmulF32Wasm, 4, 8, 8, false, false), "4x8x8 should run in wasm");
  assert.ok(same(matmulF32Wasm, 67, 129, 45, true, true), "67x129x45 should run in wasm");
});

Deno.test("matmul kernels keep Inf/NaN in their own rows and columns (zero padding is clean)", () => {
  // 5×7×9 has ragged wasm tiles (MR = 4, NR = 8) in both directions.
  const M = 5, K = 7, N = 9;
  for (const [name, fn] of KERNELS) {
    const a = rand(M * K, 8).map((x) => x + 2); // all positive, finite
    const b = rand(K * N, 9).map((x) => x + 2);
    a[4 * K + 3] = Infinity; // row 4 of A
    b[2 * N + 8] = NaN; // column 8 of B
    const out = new Float32Array(M * N);
    fn(a, 0, b, 0, out, 0, M, K, N, false, false);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        const v = out[i * N + j];
        if (j === 8) assert.ok(Number.isNaN(v), `${name} (${i},${j}) should be NaN`);
        else if (i === 4) assert.equal(v, Infinity, `${name} (${i},${j}) should be +Inf`);
        else assert.ok(Number.isFinite(v), `${name} (${i},${j}) = ${v} should be finite`);
      }
    }
  }
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

Deno.test("matmul kernels overwrite out and are stable across calls (scratch reuse)", () => {
  // A large call grows the scratch (and the wasm memory); a smaller call
  // afterwards must not see stale packed data, and calling twice must not
  // accumulate.
  check(200, 300, 140, false, false);
  check(5, 9, 6, true, false);
  check(9, 17, 11, false, true);
  for (const [name, fn] of KERNELS) {
    for (const [M, K, N] of [[3, 4, 3], [12, 10, 20]]) {
      const a = rand(M * K, 1), b = rand(K * N, 2);
      const out1 = new Float32Array(M * N), out2 = new Float32Array(M * N);
      fn(a, 0, b, 0, out1, 0, M, K, N, false, false);
      fn(a, 0, b, 0, out2, 0, M, K, N, false, false);
      fn(a, 0, b, 0, out2, 0, M, K, N, false, false);
      assert.deepEqual(out2, out1, `${name} ${M}x${K}x${N}`);
    }
  }
});

Deno.test("matmul kernels: batched calls via offsets", () => {
  for (const [name, fn] of KERNELS) {
    for (const [M, K, N] of [[5, 6, 7], [33, 20, 18]]) {
      const batch = 3;
      const a = rand(batch * M * K, 42), b = rand(batch * K * N, 43);
      const out = new Float32Array(batch * M * N);
      for (let t = 0; t < batch; t++) {
        fn(a, t * M * K, b, t * K * N, out, t * M * N, M, K, N, false, false);
      }
      for (let t = 0; t < batch; t++) {
        const ref = reference(a, t * M * K, b, t * K * N, M, K, N, false, false);
        for (let i = 0; i < M * N; i++) {
          assert.ok(Math.abs(out[t * M * N + i] - ref[i]) < 1e-5, `${name} ${M}x${K}x${N} batch ${t} elem ${i}`);
        }
      }
    }
  }
});
