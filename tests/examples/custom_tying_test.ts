// The custom scheme of examples/custom_tying.ts (A tied within blocks of 4 layers, B and u per
// layer, all trainable), in process; then the example itself as a subprocess.
import assert from "node:assert/strict";
import { add, grad, type Tensor, tensor, type Tree, tree } from "../../mod.ts";
import { crossEntropy } from "../../core/nn.ts";
import { foldIn, key, normal } from "../../core/random.ts";
import { forward, type LlamaParams, qkvWidth, randomLlama } from "../../llama/mod.ts";
import { adapt, compose, countResolved, merge, type PlanTree, summary } from "../../peft/mod.ts";
import { exportPeftLora, importPeftLora, loadAdapter, saveAdapter } from "../../io/adapter.ts";
import { blockTiedPlan } from "../../examples/custom_tying.ts";

const EXAMPLE = new URL("../../examples/custom_tying.ts", import.meta.url).pathname;
const STORIES = new URL("../../../shared/models/stories260K", import.meta.url).pathname;
const haveStories = (() => {
  try {
    return Deno.statSync(`${STORIES}/model.safetensors`).isFile;
  } catch {
    return false;
  }
})();

const R = 3;
const SEQ = [1, 5, 9, 30, 2, 17, 8, 12, 25, 3];
const TOKENS = tensor(SEQ.slice(0, -1), [SEQ.length - 1], "int32");
const TARGETS = tensor(SEQ.slice(1), [SEQ.length - 1], "int32");
const f32 = async (t: Tensor) => (await t.data()) as Float32Array;
const at = (t: Tree, p: string) => tree.at(t, p) as Tensor;

function nudge(t: PlanTree, seed: number): PlanTree {
  const k = key(seed);
  const f = (x: Tensor, p: string) => add(x, normal(foldIn(k, p), x.shape, { std: 0.1 }));
  return {
    base: t.base,
    tied: tree.map(t.tied, (x, p) => f(x, `tied.${p}`)),
    sites: tree.map(t.sites, (x, p) => f(x, `sites.${p}`)),
  };
}

async function relNormErr(a: Tensor, b: Tensor): Promise<number> {
  const x = await f32(a), y = await f32(b);
  let num = 0, den = 0;
  for (let i = 0; i < x.length; i++) [num, den] = [num + (x[i] - y[i]) ** 2, den + y[i] ** 2];
  return Math.sqrt(num / (den || 1));
}

Deno.test("custom scheme: A tied within blocks of 4 layers, B and u per layer, all trainable", async (t) => {
  for (const layers of [6, 9]) {
    await t.step(`L = ${layers}`, async () => {
      const { config, params } = randomLlama({
        seed: 2,
        numLayers: layers,
        hiddenSize: 16,
        numHeads: 2,
        numKvHeads: 1,
        intermediateSize: 24,
        vocabSize: 32,
      });
      const base = params as unknown as Tree;
      const d = config.hiddenSize, m = qkvWidth(config), blocks = Math.ceil(layers / 4);
      const logits = (model: Tree) => forward(model as unknown as LlamaParams, TOKENS, config);
      const loss = (model: Tree) => crossEntropy(logits(model), TARGETS);
      const plan = blockTiedPlan(R);
      const init = plan.init(base, key(0));
      // Layout: blocks stored once each, B and u per layer, nothing frozen besides the base.
      assert.deepEqual(Object.keys(init.trainable.tied), Array.from({ length: blocks }, (_, b) => `blk${b}`));
      assert.deepEqual(
        tree.paths(init.trainable.sites),
        Array.from({ length: layers }, (_, i) => [`layers.${i}.attn.qkv.B`, `layers.${i}.attn.qkv.u`]).flat(),
      );
      assert.ok(Object.values(init.frozen.tied).every((x) => x === null)); // null placeholders only
      assert.deepEqual(tree.paths(init.frozen.sites), []);
      assert.equal(countResolved(plan.resolve(base)).trainable, blocks * R * d + layers * (m * R + R));
      assert.equal(summary(plan, init.trainable, init.frozen).trainable, blocks * R * d + layers * (m * R + R));
      // ΔW = 0 at init.
      assert.deepEqual(await f32(logits(plan.build(init.trainable, init.frozen))), await f32(logits(base)));

      // grad of each block's A = Σ over its layers of the untied per-layer grads.
      const tr = nudge(init.trainable, 1);
      const built = plan.build(tr, init.frozen);
      const untied = compose(adapt({ rank: R, parts: ["A", "B", "u"] }));
      const u0 = untied.init(base, key(0));
      const uTr: PlanTree = { ...u0.trainable, sites: tree.map(u0.trainable.sites, (_, p) => add(at(built, p), 0)) };
      const gTied = grad((x: PlanTree) => loss(plan.build(x, init.frozen)))(tr) as PlanTree;
      const gUntied = grad((x: PlanTree) => loss(untied.build(x, u0.frozen)))(uTr) as PlanTree;
      for (let b = 0; b < blocks; b++) {
        const members = Array.from({ length: layers }, (_, i) => i).filter((i) => Math.floor(i / 4) === b);
        const sum = members.map((i) => at(gUntied.sites, `layers.${i}.attn.qkv.A`)).reduce((x, y) => add(x, y));
        const err = await relNormErr(gTied.tied[`blk${b}`]!, sum);
        assert.ok(err <= 1e-5, `blk${b}: rel err ${err}`);
      }
      for (let i = 0; i < layers; i++) {
        for (const p of ["B", "u"]) {
          const err = await relNormErr(
            at(gTied.sites, `layers.${i}.attn.qkv.${p}`),
            at(gUntied.sites, `layers.${i}.attn.qkv.${p}`),
          );
          assert.ok(err <= 1e-5, `layers.${i}.${p}: rel err ${err}`);
        }
      }

      // It saves and reloads (the groupBy function is not serialised; the resolved groups are),
      // and exports to PEFT exactly.
      const dir = await Deno.makeTempDir({ prefix: "knot_custom_tying_" });
      try {
        await saveAdapter(dir, plan, tr, init.frozen);
        const loaded = await loadAdapter(dir, base);
        assert.deepEqual(Object.keys(loaded.trainable.tied), Object.keys(tr.tied));
        assert.deepEqual(
          await f32(logits(loaded.plan.build(loaded.trainable, loaded.frozen))),
          await f32(logits(built)),
        );
        await exportPeftLora(`${dir}/peft`, plan, tr, init.frozen);
        const imported = await importPeftLora(`${dir}/peft`, base);
        const m0 = merge(plan, tr, init.frozen), m1 = merge(imported.plan, imported.trainable, imported.frozen);
        for (const [p, w] of tree.entries(m0)) assert.ok((await relNormErr(at(m1, p), w)) <= 1e-6, p);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", EXAMPLE, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
}

function losses(stdout: string): number[] {
  return [...stdout.matchAll(/^step +\d+ +loss ([\d.]+)$/gm)].map((m) => Number(m[1]));
}

Deno.test("examples/custom_tying.ts: prints the summary and a falling loss (tiny random Llama)", async () => {
  const { code, stdout, stderr } = await run("--steps", "3");
  assert.equal(code, 0, stderr);
  for (
    const s of ["tied.blk0", "tied.blk1", "layers.{0..5}.attn.qkv.B", "layers.{0..5}.attn.qkv.u", "% of LoRA at r=4"]
  ) {
    assert.ok(stdout.includes(s), `"${s}" missing from:\n${stdout}`);
  }
  const ls = losses(stdout);
  assert.equal(ls.length, 4, stdout);
  assert.ok(ls[3] < ls[0], `loss did not fall: ${ls}`);
  assert.match(stdout, /loss [\d.]+ → [\d.]+ in 3 steps/);
});

Deno.test("examples/custom_tying.ts: --help exits 0, an unknown flag is a usage error", async () => {
  const help = await run("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--model.*--steps/);
  const bad = await run("--nope");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--nope/);
});

Deno.test({
  name: "examples/custom_tying.ts --model stories260K",
  ignore: !haveStories,
  fn: async () => {
    const { code, stdout, stderr } = await run("--model", STORIES, "--steps", "2");
    assert.equal(code, 0, stderr);
    assert.ok(stdout.includes("layers.{0..4}.attn.qkv.B") && stdout.includes("tied.blk1"), stdout);
    const ls = losses(stdout);
    assert.equal(ls.length, 3);
    assert.ok(ls[2] < ls[0], `loss did not fall: ${ls}`);
  },
});
