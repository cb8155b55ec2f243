// Results of the cpu engine do not depend on its thread count: each output element is computed by one
// thread with the same operations whatever the split, so a training run on 1 and on 2 threads ends with
// bit-identical parameters and optimizer state.
import assert from "node:assert/strict";
import { setBackend } from "../mod.ts";
import { adamw, chain, clipByGlobalNorm } from "../optim/mod.ts";
import { key } from "../core/random.ts";
import { randomLlama } from "../llama/mod.ts";
import { preset } from "../peft/mod.ts";
import { makeBatch, planLoss, trainStep } from "../train/mod.ts";
import { registerBackend } from "../core/runtime.ts";
import { CpuBackend } from "../backends/cpu/backend.ts";
import { cpuThreads, cpuWorkerJobs, cpuWorkersReady, setCpuThreads } from "../backends/cpu/mod.ts";
import type { Tensor } from "../core/tensor.ts";

// Splits every kernel the engine can split (the default thresholds leave a small model's kernels whole).
registerBackend("cpu-split-all", () => new CpuBackend({ parallelMinElements: 1, parallelMinMacs: 1 }));

/** Every tensor of a tree, in key order. */
function leaves(tree: unknown, out: Tensor[] = []): Tensor[] {
  if (tree && typeof tree === "object" && "shape" in tree && "dtype" in tree) out.push(tree as Tensor);
  else if (tree && typeof tree === "object") {
    for (const k of Object.keys(tree).sort()) {
      leaves((tree as never)[k], out);
    }
  }
  return out;
}

/** Bits of every leaf of the TL6 state after `steps` steps on `threads` threads. */
async function train(threads: number, steps: number): Promise<{ bits: Uint32Array[]; jobs: number }> {
  setCpuThreads(threads);
  const workers = await cpuWorkersReady();
  assert.equal(workers, threads - 1, `workers running for ${threads} threads`);
  await setBackend("cpu-split-all");
  const { config, params } = randomLlama({ seed: 5, hiddenSize: 64, intermediateSize: 160, vocabSize: 512 });
  const seqs = Array.from({ length: 4 }, (_, b) => Array.from({ length: 49 }, (_, t) => (3 + b * 131 + t * 17) % 512));
  const batch = makeBatch(seqs.map((s) => ({ prompt: s.slice(0, 1), answer: s.slice(1) })), 48);
  const plan = preset("tl6", { rank: 8 });
  const { trainable, frozen } = plan.init(params, key(0));
  const opt = chain(clipByGlobalNorm(1), adamw(1e-2));
  const step = trainStep(planLoss(plan, config), opt);
  let state = { trainable, opt: opt.init(trainable) };
  const before = cpuWorkerJobs();
  for (let i = 0; i < steps; i++) {
    const r = step(state, frozen, batch);
    await r.loss.item();
    r.loss.dispose();
    state = r.state;
  }
  const bits = await Promise.all(leaves(state).map(async (t) => new Uint32Array((await t.data()).slice().buffer)));
  return { bits, jobs: cpuWorkerJobs() - before };
}

Deno.test("cpu engine: 20 TL6 steps on 1 and on 2 threads give bit-identical parameters and optimizer state", async () => {
  const saved = cpuThreads();
  try {
    if (new CpuBackend().kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
    const one = await train(1, 20);
    const two = await train(2, 20);
    assert.equal(one.jobs, 0);
    // A worker takes part in a kernel only when it gets to it before the main thread has run every part (the
    // main thread then takes the kernel back rather than wait for it): on a busy machine, not in every one.
    assert.ok(two.jobs > 0, `no kernel was split between threads (${two.jobs} kernels with a worker)`);
    assert.equal(one.bits.length, two.bits.length);
    one.bits.forEach((b, i) => assert.deepEqual(two.bits[i], b, `leaf ${i} differs`));
  } finally {
    setCpuThreads(saved);
    await setBackend("cpu");
  }
});

Deno.test("cpu engine: a split kernel's part table lies inside one heap block, even with more parts than threads×4", async () => {
  const saved = cpuThreads();
  const { Heap } = await import("../backends/cpu/heap.ts");
  const { Pool } = await import("../backends/cpu/wasm/pool.ts");
  const { PART_WORDS } = await import("../backends/cpu/wasm/pool_protocol.ts");
  const { matmul, dispose } = await import("../mod.ts");
  const { normal } = await import("../core/random.ts");
  // Live heap blocks, and every table the pool is given (a batched matmul makes one part per product at
  // least: 64 products here against 2 threads × 4 parts; its table once overflowed into a neighbour).
  const live = new Map<number, number>(), bad: string[] = [];
  const alloc = Heap.prototype.alloc, release = Heap.prototype.release, run = Pool.prototype.run;
  Heap.prototype.alloc = function (bytes: number) {
    const p = alloc.call(this, bytes);
    if (p >= 0) live.set(p, bytes);
    return p;
  };
  Heap.prototype.release = function (ptr: number, bytes: number) {
    live.delete(ptr);
    return release.call(this, ptr, bytes);
  };
  Pool.prototype.run = function (kernel, table, total, counter, scratch, main) {
    const lo = Math.min(table, counter), hi = Math.max(table + total * PART_WORDS * 4, counter + 4);
    if (![...live].some(([p, b]) => p <= lo && hi <= p + b)) bad.push(`${total} parts at ${lo}..${hi}`);
    return run.call(this, kernel, table, total, counter, scratch, main);
  };
  try {
    if (new CpuBackend().kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
    setCpuThreads(2);
    await cpuWorkersReady();
    await setBackend("cpu-split-all");
    const a = normal(key(1), [64, 24, 8]), b = normal(key(2), [64, 8, 24]);
    const c = matmul(a, b);
    const two = new Uint32Array((await c.data()).slice().buffer);
    dispose([c]);
    setCpuThreads(1);
    const c1 = matmul(a, b);
    assert.deepEqual(new Uint32Array((await c1.data()).slice().buffer), two, "2 threads ≠ 1 thread");
    dispose([a, b, c1]);
    assert.deepEqual(bad, [], "part tables outside any live heap block");
  } finally {
    Heap.prototype.alloc = alloc;
    Heap.prototype.release = release;
    Pool.prototype.run = run;
    setCpuThreads(saved);
    await setBackend("cpu");
  }
});

const bitsOf = async (t: Tensor) => new Uint32Array((await t.data()).slice().buffer);

/** `body` on backend `name` on 1 and 2 threads, B plain and transposed; the thread count and backend restored. */
async function onThreadsAndLayouts(name: string, body: (threads: number, transB: boolean) => Promise<void>) {
  const saved = cpuThreads();
  try {
    if (new CpuBackend().kernels === "typescript") return console.log("SKIPPED: no WebAssembly SIMD");
    for (const [threads, transB] of [[1, false], [2, false], [1, true], [2, true]] as const) {
      setCpuThreads(threads);
      await cpuWorkersReady();
      await setBackend(name);
      await body(threads, transB);
    }
  } finally {
    setCpuThreads(saved);
    await setBackend("cpu");
  }
}

Deno.test("cpu engine: a batch of products sharing one B (a layer's weight) gives each product's own bits, on 1 and 2 threads", async () => {
  const { matmul, dispose, slice } = await import("../mod.ts");
  const { normal } = await import("../core/random.ts");
  await onThreadsAndLayouts("cpu-split-all", async (threads, transB) => {
    // [3, 37, 300] · [300, 45]: run as one product of 111 rows; each slice alone is a product of 37.
    const a = normal(key(3), [3, 37, 300]), w = normal(key(4), transB ? [45, 300] : [300, 45]);
    const all = matmul(a, w, { transB });
    for (let n = 0; n < 3; n++) {
      const an = slice(a, [n, 0, 0], [n + 1, 37, 300]), cn = matmul(an, w, { transB });
      const part = slice(all, [n, 0, 0], [n + 1, 37, 45]);
      assert.deepEqual(await bitsOf(part), await bitsOf(cn), `product ${n}, ${threads} thread(s), transB ${transB}`);
      dispose([an, cn, part]);
    }
    dispose([a, w, all]);
  });
});

Deno.test("cpu engine: a batch of vector products (attention over heads) split across threads gives each product's own bits", async () => {
  const { matmul, dispose, slice } = await import("../mod.ts");
  const { normal } = await import("../core/random.ts");
  // The wasm kernels, vector products split from 1 multiply-add, other matmuls from 2²⁴ (so the batch of
  // products stays one gemvBatch kernel, cut into runs of heads).
  registerBackend(
    "cpu-split-gemv",
    () => new CpuBackend({ parallelMinGemvMacs: 1, parallelMinMacs: 2 ** 24, blas: false }),
  );
  await onThreadsAndLayouts("cpu-split-gemv", async (threads, transB) => {
    // [7, 1, 256] · [7, 256, 256] (as keys, or as values with transB false): seven heads' products.
    const q = normal(key(5), [7, 1, 256]), k = normal(key(6), [7, 256, 256]);
    const alone: Uint32Array[] = [];
    for (let h = 0; h < 7; h++) {
      const qh = slice(q, [h, 0, 0], [h + 1, 1, 256]), kh = slice(k, [h, 0, 0], [h + 1, 256, 256]);
      const one = matmul(qh, kh, { transB });
      alone.push(await bitsOf(one));
      dispose([qh, kh, one]);
    }
    // Until a worker has taken a part (it may not get to one before the main thread has run them all), by time
    // as untilWorkerJob waits (its body here is async): a busy machine can hold a worker past 50 tries.
    const before = cpuWorkerJobs(), t0 = performance.now();
    for (let r = 0; r === 0 || (threads === 2 && cpuWorkerJobs() === before && performance.now() - t0 < 3000); r++) {
      const all = matmul(q, k, { transB });
      for (let h = 0; h < 7; h++) {
        const part = slice(all, [h, 0, 0], [h + 1, 1, 256]);
        assert.deepEqual(await bitsOf(part), alone[h], `head ${h}, ${threads} thread(s), transB ${transB}`);
        part.dispose();
      }
      all.dispose();
    }
    if (threads === 2) assert.ok(cpuWorkerJobs() > before, "the batch was never split between threads");
    dispose([q, k]);
  });
});

Deno.test("cpu engine: a vector product's every output has the bits of that row's product alone, whatever N, K and the split", async () => {
  const { matmul, dispose, slice } = await import("../mod.ts");
  const { normal } = await import("../core/random.ts");
  // gemv takes its rows eight (or, W past 256 KiB, four) at a time, N/8 (N/4) rows apart, and the rows left
  // over one at a time; split across threads, each part does the same over its own rows. Each output must still
  // be its row's one chain. The last two shapes take the four-row path (on 2 threads, as lanes: cpu_lanes_test.ts).
  registerBackend("cpu-split-rows", () => new CpuBackend({ parallelMinGemvMacs: 1, blas: false }));
  await onThreadsAndLayouts("cpu-split-rows", async (threads, transB) => {
    if (!transB) return; // x·Wᵀ (rows of W) is the layout gemv groups; x·W goes by columns
    for (const [N, K] of [[7, 64], [8, 61], [9, 288], [67, 64], [203, 36], [1027, 64], [1030, 66]]) {
      const x = normal(key(N), [1, K]), w = normal(key(K), [N, K]);
      const product = matmul(x, w, { transB: true }), all = await bitsOf(product);
      for (let j = 0; j < N; j++) {
        const wj = slice(w, [j, 0], [j + 1, K]), one = matmul(x, wj, { transB: true });
        assert.equal(all[j], (await bitsOf(one))[0], `N ${N}, K ${K}, row ${j}, ${threads} thread(s)`);
        dispose([wj, one]);
      }
      dispose([x, w, product]);
    }
  });
});
