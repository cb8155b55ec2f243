/**
 * WebGPU-specific tests (the op-by-op agreement with cpu is the conformance
 * suite's job): no leaks over a training loop, the limit, missing-adapter and
 * device-loss Errors, bit-identical random numbers, batching, the pool's
 * upload hazard, deferred index errors, and every matmul program against cpu.
 * Where there is no adapter, every test that needs one is registered as
 * ignored with the reason in its name.
 */
import assert from "node:assert/strict";
import {
  add,
  dispose,
  keep,
  liveBuffers,
  matmul,
  mul,
  scope,
  setBackend,
  sub,
  take,
  tanh,
  type Tensor,
  tensor,
  tree,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import { crossEntropy } from "../core/nn.ts";
import { key, normal, split, uniform } from "../core/random.ts";
import { createWebGpuBackend } from "../backends/webgpu/mod.ts";
import { chooseProgram } from "../backends/webgpu/matmul.ts";
import { CpuBackend } from "../backends/cpu/backend.ts";
import type { MatmulSpec } from "../backends/backend.ts";
import { randomLlama } from "../llama/mod.ts";
import { tl6 } from "../peft/mod.ts";
import { adamw } from "../optim/mod.ts";
import { makeBatch, planLoss, trainStep } from "../train/mod.ts";
import { webgpuTests } from "./util/webgpu_suite.ts";

const gpuTest = await webgpuTests("webgpu");

Deno.test("webgpu: missing navigator.gpu gives a clear Error", async () => {
  await assert.rejects(
    () => createWebGpuBackend({ gpu: undefined }),
    /^Error: webgpu: WebGPU is not available here \(navigator\.gpu is undefined\); call setBackend\("cpu"\)/,
  );
});

Deno.test("webgpu: requestAdapter() → null gives a clear Error", async () => {
  const noAdapter = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
  await assert.rejects(
    () => createWebGpuBackend({ gpu: noAdapter }),
    /webgpu: no WebGPU adapter was found on this machine .*call setBackend\("cpu"\) to continue on the CPU/,
  );
});

gpuTest("300 MLP training steps leak no buffers (liveBuffers after step 300 = after step 10)", async (b) => {
  const [k1, k2, k3] = split(key(0), 3);
  let params = keep({
    w1: normal(k1, [16, 32], { std: 0.3 }),
    b1: zeros([32]),
    w2: normal(k2, [32, 4], { std: 0.3 }),
    b2: zeros([4]),
  });
  const x = keep(normal(k3, [64, 16]));
  const y = keep(tensor(Array.from({ length: 64 }, (_, i) => i % 4), undefined, "int32"));
  const loss = (p: typeof params) => crossEntropy(add(matmul(tanh(add(matmul(x, p.w1), p.b1)), p.w2), p.b2), y);
  const step = valueAndGrad(loss);
  let at10 = -1, created100 = -1, first = NaN, last = NaN;
  for (let s = 1; s <= 300; s++) {
    const { next, value } = scope(() => {
      const [value, g] = step(params);
      const next = tree.zipMap(([p, d]) => sub(p, mul(d, 0.5)), params, g);
      return { next, value };
    });
    dispose(params);
    params = next;
    if (s === 1 || s % 100 === 0) {
      const v = await value.item();
      if (s === 1) first = v;
      last = v;
    }
    value.dispose();
    if (s === 10) at10 = liveBuffers();
    if (s === 100) created100 = b.engine.stats.buffersCreated;
  }
  assert.equal(liveBuffers(), at10, "live buffers grew between step 10 and step 300");
  // The pool reaches a steady state: no GPU buffer is created after step 100.
  assert.equal(b.engine.stats.buffersCreated, created100, "the pool kept creating buffers");
  assert.ok(last < first * 0.5, `loss should fall: ${first} → ${last}`);
  dispose([params, x, y]);
});

gpuTest("a buffer over maxStorageBufferBindingSize is refused with the limit and the size named", (b) => {
  const limit = b.engine.limits.maxStorageBufferBindingSize;
  const n = Math.floor(limit / 4) + 1;
  const before = liveBuffers();
  assert.throws(
    () => zeros([n]),
    (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /maxStorageBufferBindingSize|maxBufferSize/);
      assert.ok(e.message.includes(String(n * 4)), `message should name ${n * 4} bytes: ${e.message}`);
      assert.match(e.message, /setBackend\("cpu"\)/);
      return true;
    },
  );
  assert.equal(liveBuffers(), before);
});

gpuTest("random uniform is bit-identical to cpu; normal agrees to 1e-5", async (b) => {
  const cpu = new CpuBackend();
  const size = 5000;
  for (const [k0, k1] of [[0, 0], [0, 42], [0x13198a2e, 0x03707344], [0xffffffff, 7]] as const) {
    const gu = b.random("uniform", [k0, k1], size), gz = b.random("normal", [k0, k1], size);
    const u = (await b.read(gu)) as Float32Array, z = (await b.read(gz)) as Float32Array;
    b.free(gu);
    b.free(gz);
    const want = cpu.readSync(cpu.random("uniform", [k0, k1], size)) as Float32Array;
    assert.deepEqual(new Uint32Array(u.buffer), new Uint32Array(want.buffer), `uniform bits for key (${k0}, ${k1})`);
    const zc = cpu.readSync(cpu.random("normal", [k0, k1], size)) as Float32Array;
    for (let i = 0; i < size; i++) {
      assert.ok(Math.abs(z[i] - zc[i]) <= 1e-5 * (1 + Math.abs(zc[i])), `normal[${i}]: ${z[i]} vs ${zc[i]}`);
    }
  }
});

gpuTest("1000 queued ops then one read: correct, and batched into few submits", async (b) => {
  await scope(async () => {
    let x = tensor([1, 2, 3]);
    const submits = b.engine.stats.submits;
    for (let i = 0; i < 1000; i++) x = add(x, 1);
    assert.deepEqual(Array.from(await x.data()), [1001, 1002, 1003]);
    assert.ok(b.engine.stats.submits - submits <= 4, `${b.engine.stats.submits - submits} submits for 1000 ops`);
  });
});

gpuTest("an upload never overwrites a pooled buffer that queued kernels still read", async () => {
  await scope(async () => {
    const outs: Tensor[] = [];
    for (let i = 0; i < 20; i++) {
      const a = tensor([i, i + 1, i + 2, i + 3]);
      outs.push(mul(a, 2)); // queued, not yet run
      a.dispose(); // a's buffer goes back to the pool; the next tensor() may get it
    }
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(Array.from(await outs[i].data()), [2 * i, 2 * i + 2, 2 * i + 4, 2 * i + 6]);
    }
  });
});

gpuTest("an out-of-range take index fails the next read, naming it; later reads are fine", async () => {
  await scope(async () => {
    const t = take(tensor([[1, 2], [3, 4], [5, 6]]), tensor([0, 2, 7, 1], undefined, "int32"));
    await assert.rejects(() => t.data(), /^Error: take: index 7 at position 2 is out of range \[0, 3\)/);
    const ok = take(tensor([[1, 2], [3, 4], [5, 6]]), tensor([2, 0], undefined, "int32"));
    assert.deepEqual(Array.from(await ok.data()), [5, 6, 1, 2]);
  });
});

gpuTest(
  "the first of several bad indices is named, in one dispatch: gather, an empty-row gather, scatterAdd",
  async (b) => {
    const idx = b.upload(Int32Array.from([1, 0, 9, -4, 12, 2]), "int32");
    const table = b.upload(Float32Array.from([1, 2, 3, 4, 5, 6]), "float32");
    const upd = b.fill("float32", 12, 1);
    const first = /index 9 at position 2 is out of range \[0, 3\)/;
    for (
      const [name, run, count] of [
        ["gather", () => b.gather(table, 3, 2, idx), 1],
        ["gather of empty rows", () => b.gather(table, 3, 0, idx), 1],
        ["scatterAdd", () => b.scatterAdd(idx, upd, 3, 2), 2],
      ] as const
    ) {
      const d0 = b.engine.stats.dispatches;
      const out = run();
      assert.equal(b.engine.stats.dispatches - d0, count, `${name}: dispatches`);
      await assert.rejects(() => b.read(out), first, name);
      b.free(out);
    }
    for (const x of [idx, table, upd]) b.free(x);
  },
);

gpuTest("device loss gives a clear Error on the next op", async () => {
  const b = await createWebGpuBackend();
  const buf = b.fill("float32", 4, 1);
  b.engine.device.destroy();
  await b.engine.device.lost;
  assert.throws(() => b.fill("float32", 4, 1), /webgpu: the GPU device was lost .*setBackend\("cpu"\)/);
  await assert.rejects(() => b.read(buf), /device was lost/);
});

/** Random data from a seeded LCG (values in [-1, 1)). */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

gpuTest("every matmul program agrees with cpu (vec4 and scalar paths, transposes, batches, split-K)", async (b) => {
  const cpu = new CpuBackend();
  const cases: [string, Omit<MatmulSpec, "transA" | "transB">][] = [
    ["square 64", { batchShape: [], aBatchStrides: [], bBatchStrides: [], M: 64, K: 64, N: 64 }],
    ["ragged 37×29·29×53", { batchShape: [], aBatchStrides: [], bBatchStrides: [], M: 37, K: 29, N: 53 }],
    ["big tiles 160×96·96×300", { batchShape: [], aBatchStrides: [], bBatchStrides: [], M: 160, K: 96, N: 300 }],
    ["LoRA down 512×288·288×8", { batchShape: [], aBatchStrides: [], bBatchStrides: [], M: 512, K: 288, N: 8 }],
    ["LoRA up 512×8·8×96", { batchShape: [], aBatchStrides: [], bBatchStrides: [], M: 512, K: 8, N: 96 }],
    ["split-K 40×2048·2048×8", { batchShape: [], aBatchStrides: [], bBatchStrides: [], M: 40, K: 2048, N: 8 }],
    ["split-K odd 7×1001·1001×5", { batchShape: [], aBatchStrides: [], bBatchStrides: [], M: 7, K: 1001, N: 5 }],
    ["batch broadcast [3,2]", {
      batchShape: [3, 2],
      aBatchStrides: [0, 24 * 16],
      bBatchStrides: [2 * 16 * 20, 16 * 20],
      M: 24,
      K: 16,
      N: 20,
    }],
  ];
  let T0 = performance.now();
  for (const [name, base] of cases) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const spec: MatmulSpec = { ...base, transA, transB };
        const batch = spec.batchShape.reduce((x, y) => x * y, 1);
        // Buffer extents: the last batch's offset plus one matrix.
        const last = (strides: readonly number[]) =>
          spec.batchShape.reduce((acc, d, i) => acc + (d - 1) * strides[i], 0);
        const aSz = last(spec.aBatchStrides) + spec.M * spec.K, bSz = last(spec.bBatchStrides) + spec.K * spec.N;
        const A = rand(aSz, 1), B = rand(bSz, 2);
        const want = cpu.readSync(cpu.matmul(cpu.upload(A, "float32"), cpu.upload(B, "float32"), spec)) as Float32Array;
        const ga = b.upload(A, "float32"), gb = b.upload(B, "float32");
        const gc = b.matmul(ga, gb, spec);
        const got = (await b.read(gc)) as Float32Array;
        [ga, gb, gc].forEach((x) => b.free(x));
        assert.equal(got.length, batch * spec.M * spec.N);
        const label = `${name} transA=${transA} transB=${transB} (${chooseProgram(spec).name})`;
        console.log(label, performance.now() - T0);
        T0 = performance.now();
        for (let i = 0; i < got.length; i++) {
          const tol = 1e-4 * Math.sqrt(spec.K) + 1e-4 * Math.abs(want[i]);
          if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${label}: element ${i} is ${got[i]}, cpu ${want[i]}`);
        }
      }
    }
  }
});

gpuTest("uniform() of the same key gives the same tensor on cpu and webgpu", async () => {
  await scope(async () => {
    const g = await uniform(key(123), [100]).data();
    await setBackend("cpu");
    const c = await uniform(key(123), [100]).data();
    await setBackend("webgpu");
    assert.deepEqual(g, c);
  });
});

gpuTest("MLP steps at bench size (every matmul program in one batch) match cpu", async () => {
  // Regression: with one bind group layout for scalar and vec4 kernels, wgpu validated a vec4 matmul
  // against binding sizes left by an earlier group in the same pass and rejected the batch.
  const run = async (backend: string) => {
    await setBackend(backend);
    return await scope(() => {
      const [k1, k2, k3] = split(key(7), 3);
      let p = { w1: normal(k1, [256, 512], { std: 0.05 }), b1: zeros([512]), w2: normal(k2, [512, 10], { std: 0.05 }) };
      const x = normal(k3, [64, 256]);
      const y = tensor(Array.from({ length: 64 }, (_, i) => i % 10), undefined, "int32");
      const step = valueAndGrad((q: typeof p) => crossEntropy(matmul(tanh(add(matmul(x, q.w1), q.b1)), q.w2), y));
      const losses: Tensor[] = [];
      for (let s = 0; s < 3; s++) {
        const [l, g] = step(p);
        losses.push(l);
        p = tree.zipMap(([w, d]) => sub(w, mul(d, 0.5)), p, g);
      }
      return Promise.all(losses.map((l) => l.item()));
    });
  };
  const gpuLoss = await run("webgpu"), cpuLoss = await run("cpu");
  await setBackend("webgpu");
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(gpuLoss[i] - cpuLoss[i]) < 1e-4 * cpuLoss[i], `${gpuLoss} vs ${cpuLoss}`);
  }
});

gpuTest(
  "jitted TL6 training, fused and unfused: one trace and flat liveBuffers (fused: over 300 steps), the first 8 " +
    "losses as eager's (±1e-5 relative), each step with its loss read one submit; fusion cuts the dispatches",
  async (b) => {
    // The loss read at the first 8 steps and every 100th; live buffers counted after each step.
    const run = async (jit: boolean, steps: number, fuse = true) => {
      const { config, params } = randomLlama({ seed: 1, numLayers: 1, vocabSize: 64 });
      const plan = tl6({ rank: 4 });
      const { trainable, frozen } = plan.init(params, key(0));
      const opt = adamw(1e-2);
      const step = trainStep(planLoss(plan, config), opt, { jit, fuse });
      let state = { trainable, opt: opt.init(trainable) };
      const batch = makeBatch([{ prompt: [1, 5, 9], answer: [20, 2] }, { prompt: [1, 7], answer: [11, 12, 2] }], 8);
      const losses: number[] = [], live: number[] = [];
      const d0 = b.engine.stats.programDispatches, r0 = b.engine.stats.programRuns;
      const submits: number[] = []; // per step with its loss read, after the first (which traces and uploads)
      for (let s = 0; s < steps; s++) {
        const s0 = b.engine.stats.submits;
        const out = step(state, frozen, batch);
        if (s < 8 || s % 100 === 99) losses.push(await out.loss.item());
        if (s >= 1 && s < 8) submits.push(b.engine.stats.submits - s0);
        out.loss.dispose();
        state = out.state;
        live.push(liveBuffers());
      }
      const traces = step.traces;
      const dispatches = (b.engine.stats.programDispatches - d0) / (b.engine.stats.programRuns - r0);
      step.clear();
      dispose([state, frozen, params, batch.tokens, batch.positions, batch.targets]);
      return { losses, live, traces, dispatches, submits };
    };
    const eager = await run(false, 8), fused = await run(true, 300), unfused = await run(true, 8, false);
    for (const [name, jitted] of [["fused", fused], ["unfused", unfused]] as const) {
      assert.equal(jitted.traces, 1, `${name}: one trace for every step (the optimizer's count is a tensor)`);
      assert.deepEqual(jitted.submits, jitted.submits.map(() => 1), `${name}: a step with its loss read, one submit`);
      assert.deepEqual(jitted.live, jitted.live.map(() => jitted.live[0]), `${name}: live buffers grew`);
      eager.losses.forEach((e, i) => {
        const l = jitted.losses[i];
        assert.ok(Math.abs(l - e) <= 1e-5 * Math.abs(e), `step ${i}: ${name} jitted loss ${l}, eager ${e}`);
      });
    }
    assert.ok(fused.losses[10] < fused.losses[0], `the fused run should learn: ${fused.losses}`);
    assert.ok(fused.dispatches < unfused.dispatches * 0.75, `${fused.dispatches} vs ${unfused.dispatches} dispatches`);
  },
);
