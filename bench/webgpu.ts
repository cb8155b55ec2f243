/**
 * WebGPU backend benchmarks, with the CPU backend measured in the same run:
 * matmul GFLOP/s side by side (square and LoRA shapes), the WGSL matmul
 * ladder, dispatch overhead, an MLP training step, and the same kind of step
 * as one program compiled by `WebGpuBackend.compile` against its eager
 * kernels (submits and dispatches per step beside the time). Standalone:
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
import type { BackendBuffer } from "../backends/backend.ts";
import { ProgramTracer } from "../tests/util/program_tracer.ts";
import { type MlpDims, mlpStep as mlpKernelStep } from "../tests/util/mlp_kernels.ts";

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

/** Random data from a seeded LCG (values in [-0.1, 0.1)). */
function lcg(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 31 - 1) * 0.1;
  }
  return out;
}

/**
 * One training step written as kernel calls (tests/util/mlp_kernels.ts: embedding, two linears, tanh, MSE,
 * backward, SGD), run eagerly kernel by kernel and as one compiled program with the parameters donated. After
 * the jit branch lands, a jitted TL6 step belongs here too.
 */
export async function compiledVsEager(gpu: WebGpuBackend, log: (s: string) => void): Promise<void> {
  log("\n### One program vs its kernels: a training step written as kernel calls, eager and compiled\n");
  log(
    "Embedding V×D, batch B, D → H → C, MSE, backward, SGD (tests/util/mlp_kernels.ts); the compiled program " +
      "donates the parameters. 10 steps per wait on the queue.\n",
  );
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  for (const dims of [{ V: 64, B: 8, D: 16, H: 32, C: 4 }, { V: 512, B: 64, D: 256, H: 512, C: 10 }]) {
    const r = await compiledVsEagerAt(gpu, dims);
    const label = `V ${dims.V} · B ${dims.B} · ${dims.D}→${dims.H}→${dims.C}`;
    rows.push([
      label,
      r.eager.ms.toFixed(2),
      r.compiled.ms.toFixed(2),
      `${(r.eager.ms / r.compiled.ms).toFixed(2)}×`,
      `${r.eager.submits} / ${r.compiled.submits}`,
      `${r.eager.dispatches} / ${r.compiled.dispatches}`,
    ]);
    notes.push(`${label}: ${r.arena}`);
  }
  log(
    table(
      ["step", "eager ms", "compiled ms", "eager / compiled", "submits per step (eager / compiled)", "dispatches"],
      rows,
    ),
  );
  log("\n" + notes.map((n) => `- ${n}`).join("\n"));
}

/** Times one size of the kernel-call training step, eager and compiled. */
async function compiledVsEagerAt(gpu: WebGpuBackend, dims: MlpDims) {
  const { V, B, D, H, C } = dims;
  const stats = gpu.engine.stats;
  const idx = gpu.upload(Int32Array.from({ length: B }, (_, i) => (i * 7) % V), "int32");
  const y = gpu.upload(lcg(B * C, 5), "float32");
  let params: BackendBuffer[] = [lcg(V * D, 1), lcg(D * H, 2), lcg(H, 3), lcg(H * C, 4)].map((a) =>
    gpu.upload(a, "float32")
  );
  const trace = (): { tracer: ProgramTracer; outs: BackendBuffer[] } => {
    const tracer = new ProgramTracer(gpu);
    tracer.input(idx);
    tracer.input(y);
    for (const q of params) tracer.input(q, true);
    const [emb, w1, b1, w2] = params;
    const outs = mlpKernelStep(tracer, (d) => tracer.constant(d, "float32"), { idx, y, emb, w1, b1, w2 }, dims);
    return { tracer, outs };
  };
  // Eager: every kernel dispatched as it is called (the tracer adds a closure per call to record the program).
  const eagerStep = () => {
    const { tracer, outs } = trace();
    tracer.freeAll(outs.slice(1));
    for (const q of params) gpu.free(q);
    params = outs.slice(1);
  };
  const first = trace();
  const prog = gpu.compile(first.tracer.finish(first.outs));
  first.tracer.freeAll(first.outs.slice(1));
  for (const q of params) gpu.free(q);
  params = first.outs.slice(1);
  const compiledStep = () => {
    const [loss, ...next] = prog.run([idx, y, ...params]);
    gpu.free(loss);
    params = next;
  };
  const measure = async (step: () => void) => {
    await gpu.sync();
    const s0 = stats.submits, d0 = stats.dispatches;
    for (let i = 0; i < 10; i++) step();
    await gpu.sync();
    const per = (n: number) => Number((n / 10).toFixed(1));
    return { submits: per(stats.submits - s0), dispatches: per(stats.dispatches - d0), ms: await perCall(step, 10) };
  };
  const eager = await measure(eagerStep);
  const compiled = await measure(compiledStep);
  const arena = `compiled: ${prog.arena.buffers} arena buffers (${(prog.arena.bytes / 1024).toFixed(0)} KiB) ` +
    `for ${prog.arena.intermediates} intermediate values`;
  prog.dispose();
  for (const q of [...params, idx, y]) gpu.free(q);
  return { eager, compiled, arena };
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
  await compiledVsEager(gpu, log);
  await setBackend("cpu");
}

if (import.meta.main) {
  console.log(`# knot bench: webgpu\n\n${machineLine()}`);
  if (Deno.args.includes("--compiled")) {
    // Only the compiled-vs-eager section: `deno run -A bench/webgpu.ts --compiled`.
    const gpu = (await setBackend("webgpu")) as WebGpuBackend;
    console.log(`\n## WebGPU backend (adapter: ${gpu.description})`);
    await compiledVsEager(gpu, console.log);
  } else await benchWebGpu();
}
