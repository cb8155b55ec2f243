// The training loop: exact resume, NaN stop, early stopping, data order, no leaks; batches.
import assert from "node:assert/strict";
import { adamw, chain, clipByGlobalNorm } from "../../optim/mod.ts";
import { key } from "../../core/random.ts";
import { liveBuffers, mul, tree } from "../../mod.ts";
import { randomLlama } from "../../llama/mod.ts";
import { tl6 } from "../../peft/mod.ts";
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

const { config, params } = randomLlama({ seed: 1, numLayers: 2, vocabSize: 64 });
const data: TokenizedExample[] = Array.from({ length: 24 }, (_, i) => ({
  prompt: [1, 3 + (i % 7), 10 + (i % 5)],
  answer: [20 + (i % 7), 2],
}));

function setup(lr = 1e-2) {
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
  assert.deepEqual(Array.from(await b.positions.data()), [2, 3, 4 + 3]);
  assert.deepEqual(Array.from(await b.targets.data()), [7, 2, 4]);
  assert.throws(() => makeBatch([{ prompt: [1], answer: [] }], 4), /empty answer/);
});

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
