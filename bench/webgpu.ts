/**
 * WebGPU backend benchmarks, with the CPU backend measured in the same run:
 * matmul GFLOP/s side by side (square and LoRA shapes), the WGSL matmul
 * ladder, dispatch overhead, and an MLP training step. Standalone:
 * `deno run -A bench/webgpu.ts`.
 * @module
 */
import {
  add,
  dispose,
  getBackend,
  keep,
  matmul,
  mul,
  scope,
  setBackend,
  sub,
  tanh,
  type Tensor,
  tensor,
  tree,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import { crossEntropy } from "../core/nn.ts";
import { key, normal, split } from "../core/random.ts";
import "../backends/webgpu/mod.ts";
import type { WebGpuBackend } from "../backends/webgpu/backend.ts";
import { chooseProgram } from "../backends/webgpu/matmul.ts";
import { benchWebGpuMatmul, ladderTable, LORA_SHAPES, shapeLabel } from "./kernels/webgpu_matmul.ts";
import { machineLine, table, timeMedian } from "./util.ts";

/** Waits for the current backend's queued work (a no-op on cpu). */
async function settle(): Promise<void> {
  const b = getBackend() as Partial<WebGpuBackend>;
  if (b.sync) await b.sync();
}

/** Median ms per call of `fn` (whose work is waited for), with `reps` calls queued per wait on webgpu. */
async function perCall(fn: () => void, reps: number): Promise<number> {
  return (await timeMedian(
    async () => {
      for (let r = 0; r < reps; r++) fn();
      await settle();
    },
    3,
    300,
  )) / reps;
}

async function matmulSideBySide(log: (s: string) => void): Promise<void> {
  log("\n### `matmul` op, cpu vs webgpu (GFLOP/s, same run)\n");
  log("webgpu: ops queued in batches and waited for once per batch (≥ 100 ms of work), as a program would.\n");
  const shapes: [number, number, number][] = [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024], ...LORA_SHAPES];
  const rows: (string | number)[][] = [];
  for (const [M, K, N] of shapes) {
    const flops = 2 * M * N * K;
    const gf: number[] = [];
    for (const backend of ["cpu", "webgpu"]) {
      await setBackend(backend);
      const [ka, kb] = split(key(M + N));
      const a = normal(ka, [M, K]), b = normal(kb, [K, N]);
      matmul(a, b).dispose();
      const t0 = performance.now();
      matmul(a, b).dispose();
      await settle();
      const once = performance.now() - t0;
      const reps = backend === "cpu" ? 1 : Math.max(1, Math.min(64, Math.ceil(100 / once)));
      gf.push(flops / (await perCall(() => matmul(a, b).dispose(), reps)) / 1e6);
      dispose([a, b]);
    }
    const spec = { batchShape: [], aBatchStrides: [], bBatchStrides: [], M, K, N, transA: false, transB: false };
    rows.push([
      shapeLabel([M, K, N]),
      gf[0].toFixed(2),
      gf[1].toFixed(2),
      `${(gf[1] / gf[0]).toFixed(2)}×`,
      chooseProgram(spec).name,
    ]);
  }
  log(table(["shape", "cpu", "webgpu", "webgpu / cpu", "webgpu program"], rows));
}

async function dispatchOverhead(log: (s: string) => void): Promise<void> {
  log("\n### Dispatch overhead: 1000 tiny adds ([4] + [4]) then one read\n");
  const rows: (string | number)[][] = [];
  for (const backend of ["cpu", "webgpu"]) {
    await setBackend(backend);
    const y = keep(tensor([1, 2, 3, 4]));
    const chain = () =>
      scope(async () => {
        let x = y;
        for (let i = 0; i < 1000; i++) x = add(x, y);
        await x.data();
      });
    const readOnly = () => scope(async () => void (await add(y, y).data()));
    const total = await timeMedian(chain, 3, 300);
    const oneRead = await timeMedian(readOnly, 5, 200);
    rows.push([backend, total.toFixed(1), oneRead.toFixed(2), (((total - oneRead) / 1000) * 1000).toFixed(1)]);
    y.dispose();
  }
  log(table(["backend", "1000 adds + read (ms)", "1 add + read (ms)", "µs per add (amortised)"], rows));
}

async function mlpStep(log: (s: string) => void): Promise<void> {
  log("\n### MLP training step (valueAndGrad + SGD), batch 64, 256 → 512 → 10\n");
  const rows: (string | number)[][] = [];
  for (const backend of ["cpu", "webgpu"]) {
    await setBackend(backend);
    const [k1, k2, k3] = split(key(7), 3);
    let params = keep({
      w1: normal(k1, [256, 512], { std: 0.05 }),
      b1: zeros([512]),
      w2: normal(k2, [512, 10], { std: 0.05 }),
      b2: zeros([10]),
    });
    const x = keep(normal(k3, [64, 256]));
    const y = keep(tensor(Array.from({ length: 64 }, (_, i) => i % 10), undefined, "int32"));
    const loss = (p: typeof params) => crossEntropy(add(matmul(tanh(add(matmul(x, p.w1), p.b1)), p.w2), p.b2), y);
    const step = valueAndGrad(loss);
    const update = (): Tensor => {
      const { next, value } = scope(() => {
        const [value, g] = step(params);
        return { next: tree.zipMap(([p, d]) => sub(p, mul(d, 0.01)), params, g), value };
      });
      dispose(params);
      params = next;
      return value;
    };
    const noRead = await perCall(() => update().dispose(), 10);
    const withRead = await timeMedian(
      async () => {
        const v = update();
        await v.item();
        v.dispose();
      },
      5,
      300,
    );
    rows.push([backend, noRead.toFixed(2), withRead.toFixed(2)]);
    dispose([params, x, y]);
  }
  log(table(["backend", "ms / step (10 steps per wait)", "ms / step (loss read every step)"], rows));
}

/** Runs the WebGPU section (skipped with a line saying why where there is no adapter). */
export async function benchWebGpu(log: (s: string) => void = console.log): Promise<void> {
  let gpu: WebGpuBackend;
  try {
    gpu = (await setBackend("webgpu")) as WebGpuBackend;
  } catch (e) {
    log(`\n## WebGPU\n\nskipped: ${e instanceof Error ? e.message : e}`);
    await setBackend("cpu");
    return;
  }
  log(`\n## WebGPU backend (adapter: ${gpu.description})`);
  await matmulSideBySide(log);

  log("\n### WGSL matmul ladder (GFLOP/s, square n×n×n; each checked against cpu)\n");
  const rows = await benchWebGpuMatmul(gpu, { shapes: [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024]] });
  log(ladderTable(rows));
  const at = (v: string) => rows.find((r) => r.version.startsWith(v) && r.shape === "1024²")?.gflops;
  const best = at("v4"), naive = at("v0");
  if (best && naive) {
    log(`\n1024²: program chosen by shape (v4) vs naive WGSL (v0), same run: ${(best / naive).toFixed(1)}×`);
  }

  await dispatchOverhead(log);
  await mlpStep(log);
  await setBackend("cpu");
}

if (import.meta.main) {
  console.log(`# knot bench: webgpu\n\n${machineLine()}`);
  await benchWebGpu();
}
