// WebGPU matmul ladder benchmark: v0 naive → v4 program chosen by shape, on square and LoRA shapes.
//
//   deno run -A bench/kernels/webgpu_matmul.ts          # squares 256..1024 and the LoRA shapes
//
// Every version's full result is checked against the CPU backend before it is
// timed. Time = (a batch of runs + one wait for the queue) / runs, median over
// batches, so the fixed cost of a wait is amortised; GFLOP/s = 2·M·N·K / time.

import type { MatmulSpec } from "../../backends/backend.ts";
import { CpuBackend } from "../../backends/cpu/backend.ts";
import { createWebGpuBackend, type WebGpuBackend } from "../../backends/webgpu/mod.ts";
import type { GpuBuffer } from "../../backends/webgpu/engine.ts";
import { chooseProgram } from "../../backends/webgpu/matmul.ts";
import { table, timeMedian } from "../util.ts";
import { WEBGPU_VERSIONS } from "./webgpu_matmul_versions.ts";

/** One measured cell. */
export interface WebGpuMatmulRow {
  version: string;
  shape: string;
  gflops: number;
  ms: number;
  /** max |gpu − cpu| / (1 + |cpu|) over every entry. */
  maxErr: number;
}

/** Options for {@link benchWebGpuMatmul}. */
export interface WebGpuMatmulBenchOptions {
  /** [M, K, N] shapes (default: squares 256, 512, 1024). */
  shapes?: [number, number, number][];
  /** Version names to run (default all). */
  versions?: string[];
  /** Called after each cell. */
  onRow?: (row: WebGpuMatmulRow) => void;
}

/** A shape label: `1024²` for squares, `[M×K]·[K×N]` otherwise. */
export function shapeLabel([M, K, N]: readonly number[]): string {
  return M === K && K === N ? `${M}²` : `[${M}×${K}]·[${K}×${N}]`;
}

function randomMatrix(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2 ** 31 - 1;
  }
  return x;
}

/** Times every version on every shape; each is checked against the CPU backend first. */
export async function benchWebGpuMatmul(
  gpu: WebGpuBackend,
  opts: WebGpuMatmulBenchOptions = {},
): Promise<WebGpuMatmulRow[]> {
  const shapes = opts.shapes ?? [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024]];
  const cpu = new CpuBackend();
  const engine = gpu.engine;
  const rows: WebGpuMatmulRow[] = [];
  for (const [M, K, N] of shapes) {
    const spec: MatmulSpec = {
      batchShape: [],
      aBatchStrides: [],
      bBatchStrides: [],
      M,
      K,
      N,
      transA: false,
      transB: false,
    };
    const A = randomMatrix(M * K, 1), B = randomMatrix(K * N, 2);
    const want = cpu.readSync(cpu.matmul(cpu.upload(A, "float32"), cpu.upload(B, "float32"), spec)) as Float32Array;
    const a = gpu.upload(A, "float32") as GpuBuffer, b = gpu.upload(B, "float32") as GpuBuffer;
    const c = engine.alloc("float32", M * N);
    for (const [version, fn] of WEBGPU_VERSIONS) {
      if (opts.versions && !opts.versions.includes(version)) continue;
      if (!fn(engine, a, b, c, spec)) continue;
      const got = new Float32Array(await engine.read(c));
      let maxErr = 0;
      for (let i = 0; i < got.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
      }
      if (!(maxErr < 1e-3)) throw new Error(`${version} ${shapeLabel([M, K, N])}: wrong result (max error ${maxErr})`);
      const flops = 2 * M * N * K;
      // One wait on the queue costs ~10 ms on some adapters (llvmpipe): queue enough runs per wait
      // that it is amortised (≥ 100 ms of work), as a real program batches its dispatches.
      const t0 = performance.now();
      fn(engine, a, b, c, spec);
      await engine.sync();
      const once = performance.now() - t0;
      const reps = Math.max(1, Math.min(64, Math.ceil(100 / once)));
      // A rung slower than a second (v0, v1 at 1024) is timed by that one run.
      const ms = once > 1000 ? once : (await timeMedian(
        async () => {
          for (let r = 0; r < reps; r++) fn(engine, a, b, c, spec);
          await engine.sync();
        },
        3,
        300,
      )) / reps;
      const row = { version, shape: shapeLabel([M, K, N]), gflops: flops / ms / 1e6, ms, maxErr };
      rows.push(row);
      opts.onRow?.(row);
    }
    for (const x of [a, b, c]) gpu.free(x);
  }
  return rows;
}

/** A versions × shapes table of GFLOP/s. */
export function ladderTable(rows: readonly WebGpuMatmulRow[]): string {
  const versions = [...new Set(rows.map((r) => r.version))];
  const shapes = [...new Set(rows.map((r) => r.shape))];
  return table(
    ["kernel", ...shapes],
    versions.map((
      v,
    ) => [v, ...shapes.map((s) => rows.find((r) => r.version === v && r.shape === s)?.gflops.toFixed(2) ?? "-")]),
  );
}

/** The LoRA shapes of the bench: [T,d]·[d,r], [T,r]·[r,d'], [T,d]·[d,d']. */
export const LORA_SHAPES: [number, number, number][] = [[2048, 288, 8], [2048, 8, 864], [2048, 288, 768]];

if (import.meta.main) {
  const gpu = await createWebGpuBackend();
  console.log(`# WebGPU matmul ladder (${gpu.description})\n`);
  const rows = await benchWebGpuMatmul(gpu, {
    shapes: [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024], ...LORA_SHAPES],
    onRow: (r) => console.error(`${r.version} ${r.shape}: ${r.gflops.toFixed(2)} GFLOP/s`),
  });
  console.log(ladderTable(rows));
  for (const s of LORA_SHAPES) {
    const spec = {
      batchShape: [],
      aBatchStrides: [],
      bBatchStrides: [],
      M: s[0],
      K: s[1],
      N: s[2],
      transA: false,
      transB: false,
    };
    console.log(`- ${shapeLabel(s)}: v4 runs ${chooseProgram(spec).name}`);
  }
}
