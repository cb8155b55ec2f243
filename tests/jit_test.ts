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
import { adamw, chain, clipByGlobalNorm } from "../optim/mod.ts";
import { randomLlama } from "../llama/mod.ts";
import { tl6 } from "../peft/mod.ts";
import { makeBatch, planLoss, type TokenizedExample, trainStep } from "../train/mod.ts";
import { generate } from "../llama/generate.ts";

await setBackend("cpu");

async function bits(t: unknown): Promise<string[]> {
  const out: string[] = [];
  for (const x of tree.leaves(t)) out.push(Array.from(new Uint32Array((await x.data()).slice().buffer)).join(","));
  return out;
}

const data: TokenizedExample[] = Array.from({ length: 16 }, (_, i) => ({
  prompt: [1, 3 + (i % 7), 10 + (i % 5)],
  answer: [20 + (i % 7), 2 + (i % 3)],
}));

/** A TL6 setup on a tiny random Llama; `steps` steps over fixed batches of 4, jitted or eager. */
async function train(steps: number, jitted: boolean, numLayers = 2) {
  const { config, params } = randomLlama({ seed: 1, numLayers, vocabSize: 64 });
  const plan = tl6({ rank: 4 });
  const { trainable, frozen } = plan.init(params, random.key(0));
  const opt = chain(clipByGlobalNorm(1), adamw(1e-2));
  const step = trainStep(planLoss(plan, config), opt, { jit: jitted });
  let state = { trainable, opt: opt.init(trainable) };
  const losses: number[] = [];
  const live: number[] = [];
  const start = liveBuffers();
  for (let s = 0; s < steps; s++) {
    const batch = makeBatch([0, 1, 2, 3].map((k) => data[(4 * s + k) % data.length]), 8);
    const out = step(state, frozen, batch);
    dispose([batch.tokens, batch.positions, batch.targets]);
    losses.push(await out.loss.item());
    out.loss.dispose();
    state = out.state;
    live.push(liveBuffers());
  }
  const trained = await bits(state.trainable);
  step.clear();
  const end = liveBuffers(); // a state of the same structure as at the start: the same count
  dispose([state, frozen, params]);
  return { losses, trained, live, start, end };
}

Deno.test("a 20-step TL6 run jitted is bit-identical to the eager one (losses and parameters)", async () => {
  const eager = await train(20, false);
  const jitted = await train(20, true);
  assert.deepEqual(jitted.losses, eager.losses);
  assert.deepEqual(jitted.trained, eager.trained);
});

Deno.test("liveBuffers() is flat over 300 jitted training steps", async () => {
  const { live, start, end } = await train(300, true, 1);
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
  const before = liveBuffers();
  const eager = await run(false);
  const jitted = await run(true);
  assert.equal(jitted.ids.length, 12);
  assert.deepEqual(jitted, eager);
  assert.equal(liveBuffers(), before, "generate leaked buffers");
  dispose(params);
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
