// The README snippet for a new tying scheme (the one in the PEFT work's report), verbatim between the
// markers except for the import path ("./mod.ts" in the README) and indentation; then checks that
// it builds what its comment says.
import assert from "node:assert/strict";
import { adapt, compose, countResolved, freeze, initializers, summary, tie } from "../../peft/mod.ts";
import { forward, randomLlama } from "../../llama/mod.ts";
import { key } from "../../core/random.ts";
import { tensor, tree } from "../../mod.ts";

function snippet() {
  // ---- snippet start
  // A: one frozen random matrix for the whole model; B: tied within pairs of layers; v: per layer.
  const plan = compose(
    adapt({ rank: 8, parts: ["A", "B", "v"], init: { A: initializers.normal(1), B: initializers.zeros } }),
    tie({ where: "layers.*.attn.qkv.A" }),
    tie({ where: "layers.*.attn.qkv.B", groupBy: (p) => `pair${Math.floor(Number(p.split(".")[1]) / 2)}` }),
    freeze({ where: "layers.*.attn.qkv.A" }),
  );
  const { config, params } = randomLlama({ numLayers: 4 });
  const { trainable, frozen } = plan.init(params, key(0));
  console.log(summary(plan, trainable, frozen).toString());
  // ---- snippet end
  return { plan, config, params, trainable, frozen };
}

Deno.test("README snippet: a new tying scheme from the transforms", async () => {
  const logs: string[] = [];
  const log = console.log;
  console.log = (...xs: unknown[]) => void logs.push(xs.join(" "));
  let out;
  try {
    out = snippet();
  } finally {
    console.log = log;
  }
  const { plan, config, params, trainable, frozen } = out;
  // A: one frozen matrix for the whole model; B: one per pair of layers; v per layer.
  assert.deepEqual(Object.keys(frozen.tied).filter((g) => frozen.tied[g]), ["layers/attn/qkv/A"]);
  assert.deepEqual(Object.keys(trainable.tied).filter((g) => trainable.tied[g]).sort(), ["pair0", "pair1"]);
  assert.deepEqual(tree.paths(trainable.sites), [0, 1, 2, 3].map((i) => `layers.${i}.attn.qkv.v`));
  const m = config.hiddenSize + 2 * config.numKvHeads * config.headDim;
  assert.equal(countResolved(plan.resolve(params)).trainable, 2 * m * 8 + 4 * m);
  const text = logs.join("\n");
  assert.match(text, /tied\.pair0 .* train +×2/);
  assert.match(text, /tied\.layers\/attn\/qkv\/A .* frozen +×4/);
  assert.match(text, /% of LoRA at r=8/);
  // ΔW = 0 at init: the adapted model is the base model.
  const toks = tensor([1, 2, 3], [3], "int32");
  assert.deepEqual(
    await forward(plan.build(trainable, frozen), toks, config).data(),
    await forward(params, toks, config).data(),
  );
});
