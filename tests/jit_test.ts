// jit: bit-identical training and decoding, retracing, the bounded cache, flat memory, and its errors.
import assert from "node:assert/strict";
import {
  add,
  dispose,
  exp,
  jit,
  liveBuffers,
  matmul,
  mul,
  random,
  reshape,
  setBackend,
  sum,
  type Tensor,
  tensor,
  tree,
  valueAndGrad,
  zeros,
} from "../mod.ts";
import { adamw, chain, clipByGlobalNorm, type Schedule, schedules } from "../optim/mod.ts";
import { randomLlama } from "../llama/mod.ts";
import { tl6 } from "../peft/mod.ts";
import { makeBatch, planLoss, type TokenizedExample, trainStep } from "../train/mod.ts";
import { clearGenerateCache, generate } from "../llama/generate.ts";
import { getBackend } from "../core/runtime.ts";
import { TraceBackend, type TraceBuffer } from "../jit/trace.ts";
import { buildProgram } from "../jit/passes.ts";
import type { Backend, BackendBuffer } from "../backends/backend.ts";
import type { Program } from "../backends/program.ts";
import { interpret } from "../jit/execute.ts";
import { registerBackend } from "../core/runtime.ts";
import { CpuBackend } from "../backends/cpu/backend.ts";

await setBackend("cpu");
// The tiny models here are below the cpu backend's fusion threshold (minElements): fuse at every size, so the
// fused programs are what these tests compare against eager.
const cpu = getBackend() as Backend;
if (cpu.fuses) (cpu as { fuses?: Backend["fuses"] }).fuses = { ...cpu.fuses, minElements: 0 };

async function bits(t: unknown): Promise<string[]> {
  const out: string[] = [];
  for (const x of tree.leaves(t)) out.push(Array.from(new Uint32Array((await x.data()).slice().buffer)).join(","));
  return out;
}

const data: TokenizedExample[] = Array.from({ length: 16 }, (_, i) => ({
  prompt: [1, 3 + (i % 7), 10 + (i % 5)],
  answer: [20 + (i % 7), 2 + (i % 3)],
}));

/** The examples of batch `s`: 4 of 16. */
const batchOf = (examples: TokenizedExample[], s: number) => [0, 1, 2, 3].map((k) => examples[(3 * s + 5 * k) % 16]);

/** A TL6 setup on a tiny random Llama; `steps` steps over fixed batches of 4, jitted (fused or not) or eager. */
async function train(steps: number, jitted: boolean, numLayers = 2, lr: Schedule = 1e-2, examples = data, fuse = true) {
  const { config, params } = randomLlama({ seed: 1, numLayers, vocabSize: 64 });
  const plan = tl6({ rank: 4 });
  const { trainable, frozen } = plan.init(params, random.key(0));
  const opt = chain(clipByGlobalNorm(1), adamw(lr));
  const step = trainStep(planLoss(plan, config), opt, { jit: jitted, fuse });
  let state = { trainable, opt: opt.init(trainable) };
  const losses: number[] = [];
  const live: number[] = [];
  const start = liveBuffers();
  for (let s = 0; s < steps; s++) {
    const batch = makeBatch(batchOf(examples, s), 8);
    const out = step(state, frozen, batch);
    dispose([batch.tokens, batch.positions, batch.targets]);
    losses.push(await out.loss.item());
    out.loss.dispose();
    state = out.state;
    live.push(liveBuffers());
  }
  const trained = await bits(state.trainable);
  const traces = step.traces;
  step.clear();
  const end = liveBuffers(); // a state of the same structure as at the start: the same count
  dispose([state, frozen, params]);
  return { losses, trained, live, start, end, traces };
}

/** Warm-up then cosine decay: the learning rate changes every step (as a tensor of the step count). */
const scheduled = (steps: number) => schedules.cosineWithWarmup(1e-2, 5, steps, 1e-3);

Deno.test("a 20-step TL6 run jitted, fused or not, is bit-identical to the eager one (losses and parameters)", async () => {
  for (const lr of [1e-2, scheduled(20)]) {
    const eager = await train(20, false, 2, lr);
    const jitted = await train(20, true, 2, lr);
    assert.deepEqual(jitted.losses, eager.losses);
    assert.deepEqual(jitted.trained, eager.trained);
    assert.equal(jitted.traces, 1, "one trace for every step (the step count is a tensor)");
    if (lr !== 1e-2) continue;
    const unfused = await train(20, true, 2, lr, data, false);
    assert.deepEqual(unfused.losses, jitted.losses, "fused and unfused losses");
    assert.deepEqual(unfused.trained, jitted.trained, "fused and unfused parameters");
  }
  // The cpu backend fuses: the step's program holds fused kernels.
  const compile = getBackend().compile!;
  let fused = 0;
  getBackend().compile = (
    p,
  ) => (fused += p.steps.filter((s) => s.call.kernel === "fused").length, compile.call(getBackend(), p));
  try {
    await train(1, true, 1);
  } finally {
    delete (getBackend() as { compile?: unknown }).compile;
  }
  assert.ok(fused > 20, `${fused} fused kernels in a TL6 step`);
});

Deno.test("a jitted trainStep traces once per batch shape whatever the answer counts, bit-identical to eager", async () => {
  // Answers of 1 to 5 tokens: batches of 4 hold 4 to 20 answer tokens, padded to 4, 8, 16 or 32 positions.
  const varied = Array.from(
    { length: 16 },
    (_, i) => ({ prompt: [1, 3 + (i % 7)], answer: [9, 8, 7, 6, 5].slice(0, 1 + ((i * i + i) % 5)) }),
  );
  const counts = new Set<number>(), shapes = new Set<number>();
  for (let s = 0; s < 50; s++) {
    const batch = makeBatch(batchOf(varied, s), 8);
    counts.add(batch.count);
    shapes.add(batch.positions.shape[0]);
    dispose(batch);
  }
  assert.ok(counts.size > shapes.size, `${counts.size} answer counts in ${shapes.size} shapes`);
  for (const lr of [1e-2, scheduled(50)]) {
    const eager = await train(50, false, 1, lr, varied);
    const jitted = await train(50, true, 1, lr, varied);
    assert.equal(jitted.traces, shapes.size);
    assert.deepEqual(jitted.losses, eager.losses);
    assert.deepEqual(jitted.trained, eager.trained);
  }
});

Deno.test("liveBuffers() is flat over 300 jitted training steps", async () => {
  const { live, start, end } = await train(300, true, 1, scheduled(300));
  // The step's trace cache holds its constants from the first step on; after that nothing may grow.
  assert.deepEqual(live, live.map(() => live[0]), "buffers grew across steps");
  assert.equal(end, start, "buffers left once the step's traces are cleared");
});

Deno.test("jitted generate decodes the same tokens and logits as eager generate", async () => {
  const { config, params } = randomLlama({ seed: 3, numLayers: 2, vocabSize: 64 });
  const run = async (jitted: boolean) => {
    const logits: string[] = [];
    const ids: number[] = [];
    const opts = { maxTokens: 12, stop: [], jit: jitted, onLogits: (l: Float32Array) => logits.push(l.join(",")) };
    for await (const id of generate(params, config, [1, 5, 9], opts)) ids.push(id);
    return { ids, logits };
  };
  clearGenerateCache();
  const before = liveBuffers();
  const eager = await run(false);
  const jitted = await run(true);
  assert.equal(jitted.ids.length, 12);
  assert.deepEqual(jitted, eager);
  clearGenerateCache(); // the decode programs kept for later calls hold their constants
  assert.equal(liveBuffers(), before, "generate leaked buffers");
  dispose(params);
});

Deno.test("trainStep's jitted step names its two fixes for a closed-over tensor", () => {
  const w = tensor([1, 2]);
  const x = tensor([3, 4]);
  const step = trainStep((p: { v: Tensor }) => sum(mul(mul(p.v, w), x)), adamw(1e-2));
  const state = { trainable: { v: tensor([0.5, 0.5]) }, opt: adamw(1e-2).init({ v: tensor([0.5, 0.5]) }) };
  assert.throws(
    () => step(state),
    /pass it as an argument.*step arguments, or use trainStep\(\.\.\., \{ jit: false \}\)/,
  );
  step.clear();
  dispose([w, x, state]);
});

Deno.test("jit retraces on a new shape, dtype or static value, and not otherwise", async () => {
  const f = jit((x: Tensor, scale: number) => mul(exp(x), scale), { static: [1] });
  const a = tensor([1, 2]), b = tensor([3, 4]), c = tensor([1, 2, 3]);
  const outs = [f(a, 2), f(b, 2), f(c, 2), f(a, 3), f(a, 2)];
  assert.equal(f.traces, 3);
  assert.deepEqual(Array.from(await outs[3].data()), Array.from(await mul(exp(a), 3).data()));
  f.clear();
  dispose([outs, a, b, c]);
});

Deno.test("host numbers in arguments retrace, reusing the compiled program when only scalars change", async () => {
  const f = jit((x: Tensor, h: { lr: number }) => mul(x, h.lr));
  const x = tensor([1, 2]);
  const [y1, y2, y3] = [f(x, { lr: 2 }), f(x, { lr: 3 }), f(x, { lr: 3 })];
  assert.equal(f.traces, 2, "a new host value traces again; the same one does not");
  assert.equal(f.cached, 1);
  assert.deepEqual(Array.from(await y1.data()), [2, 4]);
  assert.deepEqual(Array.from(await y2.data()), [3, 6]);
  assert.deepEqual(Array.from(await y3.data()), [3, 6]);
  f.clear();
  dispose([x, y1, y2, y3]);
});

Deno.test("the trace cache is bounded and frees what it drops", () => {
  const before = liveBuffers();
  // Each trace holds a constant (the [1, 2, 3] made inside), so a dropped trace that kept it would leak.
  const f = jit((x: Tensor) => mul(x, sum(tensor([1, 2, 3]))), { cacheSize: 2 });
  for (let n = 1; n <= 5; n++) {
    const x = zeros([n]);
    f(x).dispose();
    x.dispose();
    assert.ok(f.cached <= 2, `cache holds ${f.cached} traces`);
  }
  assert.equal(f.traces, 5);
  f.clear();
  assert.equal(liveBuffers(), before);
});

Deno.test("a donated argument is consumed: using it afterwards is an Error", () => {
  const f = jit((s: { w: Tensor }) => ({ w: add(s.w, 1) }), { donate: [0] });
  const s0 = { w: tensor([1, 2]) };
  const s1 = f(s0);
  assert.throws(() => add(s0.w, 1), /used after dispose/);
  assert.throws(() => f(s0), /used after dispose/);
  f.clear();
  dispose(s1);
});

Deno.test("jit errors name what the function did and the fix", () => {
  const w = tensor([1, 2]);
  const x = tensor([3, 4]);
  const w2 = tensor([[1], [2]]);
  const cases: [string, () => unknown, RegExp][] = [
    ["reading values", () => jit((a: Tensor) => (void a.data(), a))(x), /reads a tensor's values while being traced/],
    ["closing over a tensor", () => jit((a: Tensor) => add(a, w))(x), /created outside it.*pass it as an argument/],
    ["returning an outside tensor", () => jit((_a: Tensor) => w)(x), /created outside it.*pass it as an argument/],
    ["matmul with an outside tensor", () => jit((a: Tensor) => matmul(reshape(a, [1, 2]), w2))(x), /outside/],
    ["a non-tree argument", () => jit((a: Tensor, _k: unknown) => a)(x, random.key(0)), /mark the argument static/],
    ["an object output", () => jit((a: Tensor) => ({ k: random.key(0), a }))(x), /returns trees of tensors/],
    ["grad through jit", () => valueAndGrad((a: Tensor) => sum(jit(exp)(a)))(x), /cannot differentiate through/],
  ];
  for (const [what, run, message] of cases) assert.throws(run, message, what);
  // Awaiting item() makes the function async: refused before anything runs on the result.
  assert.throws(() => jit(async (a: Tensor) => mul(a, await a.item()))(x), /must be synchronous.*item\(\)/);
  dispose([w, w2, x]);
});

Deno.test("outputs that are inputs, constants or repeats come back as separate tensors", async () => {
  const before = liveBuffers();
  const f = jit((x: Tensor) => [x, x, tensor([7, 8]), exp(x), exp(x)]);
  const x = tensor([1, 2]);
  const outs = f(x) as Tensor[];
  assert.equal(new Set(outs).size, 5);
  outs[0].dispose(); // each owns its buffer: disposing one leaves the others and x intact
  assert.deepEqual(Array.from(await outs[1].data()), [1, 2]);
  assert.deepEqual(Array.from(await outs[2].data()), [7, 8]);
  const ex = exp(x);
  assert.deepEqual(Array.from(await outs[4].data()), Array.from(await ex.data()));
  assert.deepEqual(Array.from(await x.data()), [1, 2]);
  f.clear();
  dispose([outs, x, ex]);
  assert.equal(liveBuffers(), before);
});

Deno.test("a jitted function called inside another's trace becomes part of that trace", async () => {
  const inner = jit((x: Tensor) => mul(x, 3));
  const outer = jit((x: Tensor) => add(inner(x), 1));
  const x = tensor([1, 2]);
  const y = outer(x);
  assert.deepEqual(Array.from(await y.data()), [4, 7]);
  assert.equal(inner.traces, 0);
  outer.clear();
  dispose([x, y]);
});

Deno.test("program passes: a strided copy of all of its operand in order (moving size-1 axes) is no step", () => {
  const t = new TraceBackend(getBackend(), "test");
  const a = t.input(0, 8, "float32");
  const moved = t.strided(a, [1, 2, 1, 4], [8, 4, 8, 1], 0); // [2, 1, 4] → [1, 2, 1, 4]: the same order
  const swapped = t.strided(a, [4, 2], [1, 4], 0); // a real transpose stays
  const tail = t.strided(a, [4], [1], 4); // an offset stays
  const e = t.unary("exp", moved, "float32");
  const { program: p } = buildProgram(
    t.values,
    1,
    [(e as TraceBuffer).id, (swapped as TraceBuffer).id, (tail as TraceBuffer).id, (moved as TraceBuffer).id],
    [false],
  );
  assert.deepEqual(p.steps.map((st) => st.call.kernel), ["strided", "strided", "unary", "strided"]);
  const exp = p.steps[2].call as { x: number };
  assert.equal(exp.x, 0, "exp reads the input itself");
  // Returned, the identity copy is an output: a fresh copy of the input (outputs are never inputs).
  const last = p.steps[3].call as { x: number };
  assert.equal(last.x, 0);
});

Deno.test("program passes: merged duplicates, dropped dead calls, fresh outputs, liveness", () => {
  const t = new TraceBackend(getBackend(), "test");
  const a = t.input(0, 4, "float32"), b = t.input(1, 4, "float32");
  const s = (buf: BackendBuffer) => ({ buf, strides: [1] });
  const e1 = t.unary("exp", a, "float32");
  const e2 = t.unary("exp", a, "float32"); // the same call: merged with e1
  t.unary("log", b, "float32"); // dead: nothing returned depends on it
  const sum = t.binary("add", s(e1), s(e2), [4], "float32");
  const half = t.upload(new Float32Array([0.5]), "float32"); // a scalar: becomes an input
  const out = t.binary("mul", s(sum), { buf: half, strides: [0] }, [4], "float32");
  const { program: p, scalars } = buildProgram(
    t.values,
    2,
    [(out as TraceBuffer).id, (out as TraceBuffer).id, (a as TraceBuffer).id],
    [true, false],
  );
  assert.equal(p.inputs, 3, "two traced inputs and one scalar");
  assert.deepEqual(scalars.map((d) => Array.from(d)), [[0.5]]);
  assert.deepEqual(p.steps.map((st) => st.call.kernel), ["unary", "binary", "binary", "strided", "strided"]);
  assert.equal(new Set(p.outputs).size, 3, "each output returned once");
  const defined = new Set(p.steps.map((st) => st.out));
  for (const o of p.outputs) assert.ok(defined.has(o), "every output is defined by a step");
  const freed = p.lastUse.flat();
  assert.ok(freed.includes(0), "the donated input is freed after its last use");
  assert.ok(!freed.includes(1) && !freed.includes(2), "a kept input and a scalar input are never freed");
  for (const o of p.outputs) assert.ok(!freed.includes(o), "outputs are never freed");
  assert.deepEqual(p.donated, [true, false, false]);
});

Deno.test("program passes: equal scalars are one input only with mergeScalars; constants merge by bytes", () => {
  const t = new TraceBackend(getBackend(), "test");
  const a = t.input(0, 4, "float32");
  const sc = (v: number) => ({ buf: t.upload(Float32Array.of(v), "float32"), strides: [0] });
  const x = { buf: a, strides: [1] };
  const y1 = t.binary("mul", x, sc(0.5), [4], "float32");
  const y2 = t.binary("add", { buf: y1, strides: [1] }, sc(0.5), [4], "float32");
  const y3 = t.binary("add", { buf: y2, strides: [1] }, sc(-0), [4], "float32");
  const y4 = t.binary("add", { buf: y3, strides: [1] }, sc(0), [4], "float32");
  const pair = (v: number) => ({ buf: t.upload(Float32Array.of(v, 1), "float32"), strides: [1] });
  const z = t.binary("add", pair(-0), pair(0), [2], "float32");
  const ids = [(y4 as TraceBuffer).id, (z as TraceBuffer).id];
  const apart = buildProgram(t.values, 1, ids, [false]);
  assert.equal(apart.scalars.length, 4, "without mergeScalars: one input per scalar");
  const merged = buildProgram(t.values, 1, ids, [false], true);
  assert.deepEqual(merged.scalars.map((d) => Object.is(d[0], -0) ? "-0" : d[0]), [0.5, "-0", 0], "−0 is not 0");
  assert.equal(merged.program.inputs, 4, "the traced input and three distinct scalars");
  assert.equal(merged.program.constants.length, 2, "[−0, 1] and [0, 1] stay two constants");
});

Deno.test("a backend with compile runs the program it is given; clear disposes it", async () => {
  const cpu = getBackend();
  const programs: Program[] = [];
  let disposed = 0;
  // The cpu backend plus a compile hook that lowers a program to the generic executor, counting calls.
  const withCompile = new Proxy(cpu, {
    get(target, k) {
      if (k === "compile") {
        return (p: Program) => {
          programs.push(p);
          const inner = interpret(withCompile, p);
          return { run: inner.run, dispose: () => (disposed++, inner.dispose()) };
        };
      }
      const v = Reflect.get(target, k);
      return typeof v === "function" ? v.bind(target) : v;
    },
  }) as Backend;
  registerBackend("cpu-with-compile", () => withCompile);
  await setBackend("cpu-with-compile");
  try {
    const f = jit((x: Tensor, h: { lr: number }) => mul(exp(x), h.lr));
    const x = tensor([1, 2]);
    const [y1, y2] = [f(x, { lr: 2 }), f(x, { lr: 3 })];
    assert.equal(programs.length, 1, "one compile: the second call changed only a scalar");
    assert.equal(programs[0].inputs, 2, "the traced input and the lifted scalar");
    await setBackend("cpu");
    const want = mul(exp(tensor([1, 2])), 3);
    assert.deepEqual(await bits(y2), await bits(want));
    f.clear();
    assert.equal(disposed, 1);
    dispose([x, y1, y2, want]);
  } finally {
    await setBackend("cpu");
  }
});

Deno.test("a host value that changes only an output's shape gives that shape (same program)", async () => {
  const f = jit((x: Tensor, h: { rows: number }) => reshape(exp(x), [h.rows, 4 / h.rows]));
  const x = tensor([1, 2, 3, 4]);
  const a = f(x, { rows: 2 }), b = f(x, { rows: 4 });
  assert.deepEqual([a.shape, b.shape], [[2, 2], [4, 1]]);
  assert.equal(f.cached, 1);
  assert.deepEqual(await bits(a), await bits(b));
  f.clear();
  dispose([x, a, b]);
});

Deno.test("an op over tensors of two backends names them (two instances of one kind too) and the fix", async () => {
  registerBackend("cpu-second", () => new CpuBackend());
  const x = tensor([1, 2]);
  await setBackend("cpu-second");
  try {
    const y = tensor([3, 4]);
    assert.throws(
      () => add(x, y),
      /^Error: add: operands live on different backends \(two instances of the cpu backend\); copy one over, e\.g\. tensor\(await x\.data\(\)/,
    );
    y.dispose();
  } finally {
    await setBackend("cpu");
    x.dispose();
  }
});
