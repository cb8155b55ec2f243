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
    assert.ok(two.jobs > 1000, `kernels were split between threads (${two.jobs} worker parts)`);
    assert.equal(one.bits.length, two.bits.length);
    one.bits.forEach((b, i) => assert.deepEqual(two.bits[i], b, `leaf ${i} differs`));
  } finally {
    setCpuThreads(saved);
    await setBackend("cpu");
  }
});
