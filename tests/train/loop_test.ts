// The training loop: exact resume, NaN stop, early stopping, data order, no leaks; batches.
import assert from "node:assert/strict";
import { adamw, chain, clipByGlobalNorm, type Schedule } from "../../optim/mod.ts";
import { cosineWithWarmup } from "../../optim/schedules.ts";
import { key } from "../../core/random.ts";
import { dispose, liveBuffers, mul, type Tensor, tree, valueAndGrad } from "../../mod.ts";
import { randomLlama } from "../../llama/mod.ts";
import { lora, tl6 } from "../../peft/mod.ts";
import { encodeSafetensors, parseSafetensors } from "../../io/safetensors.ts";
import {
  CHECKPOINT_FILE,
  epochOrder,
  fit,
  hasCheckpoint,
  type LmBatch,
  loadCheckpoint,
  makeBatch,
  planLoss,
  saveCheckpoint,
  type TokenizedExample,
  trainStep,
} from "../../train/mod.ts";
import { removeWhenDone } from "../util/temp.ts";
import { getBackend, registerBackend, setBackend } from "../../core/runtime.ts";
import { CpuBackend } from "../../backends/cpu/backend.ts";

const { config, params } = randomLlama({ seed: 1, numLayers: 2, vocabSize: 64 });
const data: TokenizedExample[] = Array.from({ length: 24 }, (_, i) => ({
  prompt: [1, 3 + (i % 7), 10 + (i % 5)],
  answer: [20 + (i % 7), 2],
}));

/** A learning rate that changes every step, so a resume must restore the count exactly. */
const scheduled = cosineWithWarmup(1e-2, 3, 8, 1e-3);

function setup(lr: Schedule = 1e-2) {
  const plan = tl6({ rank: 4 });
  const { trainable, frozen } = plan.init(params, key(0));
  const opt = chain(clipByGlobalNorm(1), adamw(lr));
  const step = trainStep(planLoss(plan, config), opt);
  return {
    plan,
    frozen,
    init: { trainable, opt: opt.init(trainable) },
    step: (s: Parameters<typeof step>[0], b: LmBatch) => step(s, frozen, b),
  };
}

const common = {
  size: data.length,
  batch: (idx: number[]) => makeBatch(idx.map((i) => data[i]), 8),
  batchSize: 4,
  seed: 7,
};

async function bits(t: unknown): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [p, x] of tree.entries(t)) {
    out.set(p, Array.from(new Uint32Array((await x.data()).slice().buffer)).join(","));
  }
  return out;
}

Deno.test("interrupt then resume reaches the uninterrupted final adapter bit for bit", async () => {
  const dirA = await Deno.makeTempDir(), dirB = await Deno.makeTempDir();
  await using _cleanup = removeWhenDone(dirA, dirB);
  const a = setup();
  const full = await fit({ ...common, step: a.step, init: a.init, steps: 10, checkpoint: { dir: dirA, every: 3 } });
  assert.equal(full.stoppedBy, "steps");

  const b = setup();
  const controller = new AbortController();
  const first = await fit({
    ...common,
    step: b.step,
    init: b.init,
    steps: 10,
    checkpoint: { dir: dirB, every: 3 },
    signal: controller.signal,
    onStep: (i) => i.step === 4 && controller.abort(),
  });
  assert.equal(first.stoppedBy, "interrupted");
  assert.equal(first.step, 4);
  const c = setup(); // a fresh process would start like this
  const resumed = await fit({
    ...common,
    step: c.step,
    init: c.init,
    steps: 10,
    checkpoint: { dir: dirB, every: 3 },
    resume: true,
  });
  assert.equal(resumed.step, 10);
  assert.deepEqual(await bits(resumed.state.trainable), await bits(full.state.trainable));
  assert.deepEqual(resumed.history.map((h) => h.loss), full.history.map((h) => h.loss));
});

/** Rewrites the checkpoint in `dir` as the v2 format wrote it: step counts as JSON numbers, no count tensors. */
async function downgradeToV2(dir: string): Promise<number[]> {
  const { tensors, metadata } = parseSafetensors(await Deno.readFile(`${dir}/${CHECKPOINT_FILE}`));
  const counts: number[] = [];
  const numbers = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(numbers);
    if (!x || typeof x !== "object") return x;
    const name = (x as { $tensor?: string }).$tensor;
    if (name?.endsWith(".count")) {
      const raw = tensors[name];
      assert.deepEqual([raw.dtype, raw.shape], ["I32", []]);
      counts.push(new Int32Array(raw.data.slice().buffer)[0]);
      delete tensors[name];
      return counts.at(-1);
    }
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, numbers(v)]));
  };
  const state = JSON.stringify(numbers(JSON.parse(metadata!.state)));
  await Deno.writeFile(`${dir}/${CHECKPOINT_FILE}`, encodeSafetensors(tensors, { ...metadata, version: "2", state }));
  return counts;
}

Deno.test("the step count is saved as an int32 tensor, and a v2 checkpoint (count a number) resumes bit for bit", async () => {
  const dirA = await Deno.makeTempDir(), dirB = await Deno.makeTempDir();
  await using _cleanup = removeWhenDone(dirA, dirB);
  const a = setup(scheduled);
  const full = await fit({ ...common, step: a.step, init: a.init, steps: 8 });
  const b = setup(scheduled);
  await fit({ ...common, step: b.step, init: b.init, steps: 5, checkpoint: { dir: dirB } });
  const saved = await loadCheckpoint(dirB);
  const count = (saved.state as { opt: [unknown, { count: Tensor }] }).opt[1].count;
  assert.deepEqual([count.dtype, count.shape, await count.item()], ["int32", [], 5]);
  dispose(saved);
  assert.deepEqual(await downgradeToV2(dirB), [5]);
  const c = setup(scheduled);
  const resumed = await fit({
    ...common,
    step: c.step,
    init: c.init,
    steps: 8,
    checkpoint: { dir: dirB },
    resume: true,
  });
  assert.equal(resumed.step, 8);
  assert.deepEqual(await bits(resumed.state), await bits(full.state));
  assert.deepEqual(resumed.history.map((h) => h.loss), full.history.map((h) => h.loss));
  dispose([full.state, full.best, resumed.state, resumed.best]);
});

Deno.test("a NaN loss stops the run with a clear message and keeps the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  await using _cleanup = removeWhenDone(dir);
  const s = setup();
  let n = 0;
  const poisoned = (st: Parameters<typeof s.step>[0], b: LmBatch) => {
    const r = s.step(st, b);
    return ++n === 3 ? { ...r, loss: mul(r.loss, NaN) } : r;
  };
  const r = await fit({ ...common, step: poisoned, init: s.init, steps: 10, checkpoint: { dir, every: 1 } });
  assert.equal(r.stoppedBy, "nan");
  assert.match(r.message ?? "", /loss became NaN at step 3; stopped; the last good checkpoint \(step 2\) is kept in/);
});

Deno.test("early stopping after `patience` evaluations without improvement; best parameters kept", async () => {
  const s = setup();
  const losses = [1.0, 0.8, 0.85, 0.9, 0.95, 0.7];
  let k = 0;
  const r = await fit({
    ...common,
    step: s.step,
    init: s.init,
    steps: 100,
    evalEvery: 1,
    evaluate: () => Promise.resolve({ loss: losses[k++] }),
    earlyStopping: { patience: 3, minDelta: 0.001 },
  });
  assert.equal(r.stoppedBy, "early-stopping");
  assert.equal(r.step, 5);
  assert.equal(r.best.step, 2);
  assert.equal(r.best.loss, 0.8);
});

Deno.test("data order: a seeded permutation per epoch", () => {
  const o = epochOrder(50, 3, 0);
  assert.deepEqual([...o].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(o, epochOrder(50, 3, 0));
  assert.notDeepEqual(o, epochOrder(50, 3, 1));
  assert.notDeepEqual(o, epochOrder(50, 4, 0));
});

Deno.test("training steps do not leak buffers", async () => {
  const s = setup();
  const r1 = await fit({ ...common, step: s.step, init: s.init, steps: 2 });
  tree.leaves(r1.best.trainable).forEach((t) => t.dispose());
  const before = liveBuffers();
  const r2 = await fit({ ...common, step: s.step, init: r1.state, steps: 12 });
  // Ten more steps leave exactly the new state (same size as the old) plus the best copy.
  tree.leaves(r2.best.trainable).forEach((t) => t.dispose());
  assert.equal(liveBuffers(), before);
});

Deno.test("makeBatch: loss positions cover answer tokens only; long prompts lose tokens from the left", async () => {
  const b = makeBatch([{ prompt: [1, 5, 6], answer: [7, 2] }, { prompt: [1, 9, 8, 7, 6, 5], answer: [4] }], 4, 0);
  assert.deepEqual(await b.tokens.array(), [[1, 5, 6, 7], [1, 7, 6, 5]]);
  // Row 0: position 2 (6) predicts 7 and position 3 (7) predicts 2. Row 1: BOS kept, then the last
  // prompt tokens; position 3 (5) predicts the answer 4.
  // Three loss positions, padded to four (a power of two) with position 0 and the ignored target −100.
  assert.deepEqual(Array.from(await b.positions.data()), [2, 3, 4 + 3, 0]);
  assert.deepEqual(Array.from(await b.targets.data()), [7, 2, 4, -100]);
  assert.deepEqual([b.count, b.tokensSeen], [3, 8]);
  assert.deepEqual(Object.keys(b), ["tokens", "positions", "targets"], "host counts are not tree leaves");
  const ex = [{ prompt: [1, 5, 6], answer: [7, 2] }, { prompt: [1, 9, 8, 7, 6, 5], answer: [4] }];
  assert.deepEqual(makeBatch(ex, 4, 0, "none").positions.shape, [3]);
  assert.deepEqual(makeBatch(ex, 4, 0, "full").positions.shape, [8]);
  assert.deepEqual(makeBatch([ex[0], ex[0], ex[0]], 4).positions.shape, [8]); // 6 → 8, at most B·T = 12
  assert.throws(() => makeBatch(ex, 4, 0, "pow3" as never), /padPositions must be "pow2", "full" or "none"/);
  assert.throws(() => makeBatch([{ prompt: [1], answer: [] }], 4), /empty answer/);
});

Deno.test("padded loss positions leave the loss and the gradients bit-identical (on the engine's own kernels)", async () => {
  // A system BLAS picks its summation order by a product's shape (OpenBLAS has kernels for small products), so
  // with it more loss positions change the gradients' low bits; the engine's kernels do not.
  registerBackend("cpu-own-kernels", () => new CpuBackend({ blas: false }));
  const previous = getBackend().name;
  await setBackend("cpu-own-kernels");
  try {
    await paddedBitIdentical();
  } finally {
    await setBackend(previous);
  }
});

async function paddedBitIdentical() {
  const examples = [0, 1, 2].map((i) => ({
    prompt: data[i].prompt,
    answer: [20 + i, 2, 5 + i, 9].slice(0, 2 + i),
  }));
  // TL6 on a tied head (nn.linearCrossEntropy), and LoRA on an untied LM head too (crossEntropy of the logits).
  const untied = randomLlama({ seed: 2, numLayers: 1, vocabSize: 64, tieWordEmbeddings: false });
  const tied = randomLlama({ seed: 1, numLayers: 2, vocabSize: 64 });
  const cases = [
    { plan: tl6({ rank: 4 }), model: tied }, // the module's model, made again on this backend
    { plan: lora({ rank: 4, where: "{layers.*.attn.qkv,lmHead}" }), model: untied },
  ];
  for (const { plan, model } of cases) {
    const { trainable, frozen } = plan.init(model.params, key(0));
    const vg = valueAndGrad(planLoss(plan, model.config));
    const run = async (pad: "none" | "pow2" | "full") => {
      const batch = makeBatch(examples, 8, 0, pad);
      const [loss, grads] = vg(trainable, frozen, batch);
      const out = { loss: await bits(loss), grads: await bits(grads), positions: batch.positions.shape[0] };
      dispose([loss, grads, batch]);
      return out;
    };
    const exact = await run("none"), pow2 = await run("pow2"), full = await run("full");
    assert.deepEqual([exact.positions, pow2.positions, full.positions], [9, 16, 24]);
    assert.deepEqual(pow2.loss, exact.loss);
    assert.deepEqual(full.loss, exact.loss);
    assert.deepEqual(pow2.grads, exact.grads);
    assert.deepEqual(full.grads, exact.grads);
    dispose(trainable); // frozen holds the base model's own tensors
  }
  dispose([untied.params, tied.params]);
}

Deno.test("a NaN at the first step names no checkpoint: none was saved", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = setup();
    const poisoned = (st: Parameters<typeof s.step>[0], b: LmBatch) => {
      const r = s.step(st, b);
      return { ...r, loss: mul(r.loss, NaN) };
    };
    const r = await fit({ ...common, step: poisoned, init: s.init, steps: 5, checkpoint: { dir, every: 1 } });
    assert.equal(r.stoppedBy, "nan");
    assert.match(r.message ?? "", /loss became NaN at step 1; stopped; no checkpoint was saved before it/);
    assert.doesNotMatch(r.message ?? "", /step none|last good/);
    assert.equal(await hasCheckpoint(dir), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an update that overflows the parameters is never saved as a good checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = setup();
    let n = 0;
    // Step 3's loss is finite (computed before the update) but its update makes the parameters infinite.
    const overflowing = (st: Parameters<typeof s.step>[0], b: LmBatch) => {
      const r = s.step(st, b);
      if (++n !== 3) return r;
      const trainable = tree.map(r.state.trainable, (x) => mul(x, Infinity));
      return { ...r, state: { ...r.state, trainable } };
    };
    const r = await fit({ ...common, step: overflowing, init: s.init, steps: 10, checkpoint: { dir, every: 1 } });
    assert.equal(r.stoppedBy, "nan");
    assert.match(
      r.message ?? "",
      /parameters became non-finite at step 3; stopped; the last good checkpoint \(step 2\)/,
    );
    const c = await loadCheckpoint(dir);
    assert.equal(c.step, 2);
    for (const [path, t] of tree.entries((c.state as { trainable: unknown }).trainable)) {
      assert.ok((await t.data()).every(Number.isFinite), `${path} is not finite in the saved checkpoint`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadCheckpoint releases every buffer it allocated when it throws", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = setup();
    await saveCheckpoint(dir, { state: s.init, step: 1 });
    // The same tensors, but a state that names one more: unflatten fails after every tensor was read.
    const parsed = parseSafetensors(await Deno.readFile(`${dir}/${CHECKPOINT_FILE}`));
    const raw = parsed.tensors, meta = { ...parsed.metadata! };
    meta.state = JSON.stringify({ ...JSON.parse(meta.state), extra: { $tensor: "s.nowhere" } });
    await Deno.writeFile(`${dir}/${CHECKPOINT_FILE}`, encodeSafetensors(raw, meta));
    const before = liveBuffers();
    await assert.rejects(() => loadCheckpoint(dir), /tensor "s.nowhere" is missing/);
    assert.equal(liveBuffers(), before);
    // And a state that is not JSON.
    meta.state = "{";
    await Deno.writeFile(`${dir}/${CHECKPOINT_FILE}`, encodeSafetensors(raw, meta));
    await assert.rejects(() => loadCheckpoint(dir), /not valid JSON/);
    assert.equal(liveBuffers(), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resume removes temporary files that interrupted checkpoint writes left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = setup();
    await fit({ ...common, step: s.step, init: s.init, steps: 2, checkpoint: { dir, every: 1 } });
    await Deno.writeTextFile(`${dir}/${CHECKPOINT_FILE}.tmp-0123abcd`, "torn");
    const c = setup();
    const r = await fit({ ...common, step: c.step, init: c.init, steps: 3, checkpoint: { dir }, resume: true });
    assert.equal(r.step, 3);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, [CHECKPOINT_FILE]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
