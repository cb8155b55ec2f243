// The cpu backend's products on a system BLAS (backends/cpu/wasm/blas.ts), where one is found: the same values
// as the reference kernels (to float32 rounding), and the same bits on 1 and 2 threads (each product cut into
// blocks fixed by its shape, one BLAS call each, whichever thread runs it).
import assert from "node:assert/strict";
import { CpuBackend } from "../backends/cpu/backend.ts";
import { cpuThreads, cpuWorkersReady, setCpuThreads } from "../backends/cpu/mod.ts";
import { untilWorkerJob } from "./util/threads.ts";
import type { MatmulSpec } from "../backends/backend.ts";

const here = new CpuBackend().blas;
const skip = () => console.log("SKIPPED: no system BLAS here (libopenblas, or Accelerate on macOS; needs -A)");

function data(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 2);
}

/** [batch] products of op(A) [M, K] and op(B) [K, N], A and B stored whole per product. */
function spec(batch: number, M: number, K: number, N: number, transA: boolean, transB: boolean): MatmulSpec {
  return { batchShape: [batch], aBatchStrides: [M * K], bBatchStrides: [K * N], M, K, N, transA, transB };
}

const SHAPES: [number, number, number, number][] = [
  [1, 300, 200, 100], // blocks of rows
  [1, 64, 288, 1000], // blocks of columns
  [3, 50, 64, 70], // a batch, each product its own blocks
  [1, 1, 288, 2000], // x·op(B): a vector product over N
  [1, 2000, 288, 1], // op(A)·b: over M
  [2, 1, 128, 600], // a batch of vector products
];

Deno.test("cpu BLAS: products equal the reference kernels' to float32 rounding, every transpose", () => {
  if (!here) return skip();
  const be = new CpuBackend(), ref = new CpuBackend({ useEngine: false });
  assert.equal(new CpuBackend({ blas: false }).blas, null);
  for (const [batch, M, K, N] of SHAPES) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const s = spec(batch, M, K, N, transA, transB), A = data(batch * M * K, 1), B = data(batch * K * N, 2);
        const got = be.readSync(be.matmul(be.upload(A, "float32"), be.upload(B, "float32"), s));
        const want = ref.readSync(ref.matmul(ref.upload(A, "float32"), ref.upload(B, "float32"), s));
        // Sums of K terms of size ≤ 4 in float32: both orders within K·2⁻²³·4 of the exact sum, relative to 1 + |v|.
        const tol = 8 * K * 2 ** -23;
        got.forEach((v, i) => {
          const err = Math.abs(v - want[i]) / (1 + Math.abs(want[i]));
          if (err > tol) assert.fail(`${JSON.stringify(s)} element ${i}: ${v} vs ${want[i]}`);
        });
      }
    }
  }
});

Deno.test("cpu BLAS: the same bits on 1 and 2 threads, with the worker running blocks", async () => {
  if (!here) return skip();
  const saved = cpuThreads();
  // Products split from their first multiply-add, so every one of these is cut between the threads.
  const be = new CpuBackend({ parallelMinMacs: 1, parallelMinGemvMacs: 1 });
  const bits = (x: ArrayLike<number>) => new Uint32Array(Float32Array.from(x).buffer);
  try {
    for (const [batch, M, K, N] of SHAPES) {
      const s = spec(batch, M, K, N, false, true), A = data(batch * M * K, 3), B = data(batch * K * N, 4);
      const run = () => be.readSync(be.matmul(be.upload(A, "float32"), be.upload(B, "float32"), s));
      setCpuThreads(1);
      const one = bits(run());
      setCpuThreads(2);
      await cpuWorkersReady();
      const twice = () => assert.deepEqual(bits(run()), one, `[${batch}, ${M}, ${K}, ${N}] on 2 threads`);
      assert.ok(untilWorkerJob(twice), `[${batch}, ${M}, ${K}, ${N}]: no block ran on the worker`);
    }
  } finally {
    setCpuThreads(saved);
  }
});
