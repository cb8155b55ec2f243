// The transforms plans are made of (adapt, tie, freeze, unfreeze, initialize) and how they compose:
// errors that name the offending pattern, composition, initializers, per-storage-path keys,
// custom tie groups, trainable base leaves, other adapter sites, and the summary table.
import assert from "node:assert/strict";
import { add, grad, mul, sub, type Tensor, tensor, type Tree, tree, zeros } from "../../mod.ts";
import { crossEntropy } from "../../core/nn.ts";
import { foldIn, key, normal } from "../../core/random.ts";
import { forward, type LlamaParams, qkvWidth, randomLlama } from "../../llama/mod.ts";
import {
  adapt,
  compose,
  countResolved,
  freeze,
  initialize,
  initializers,
  lora,
  merge,
  type Plan,
  type PlanTree,
  preset,
  PRESET_NAMES,
  summary,
  tie,
  tl5,
  tl6,
  unfreeze,
  vera,
} from "../../peft/mod.ts";
import { exportPeftLora, importPeftLora, loadAdapter, saveAdapter } from "../../io/adapter.ts";
import { loadSafetensors } from "../../io/safetensors.ts";

const tiny = (numLayers: number) =>
  randomLlama({ seed: 3, numLayers, hiddenSize: 16, numHeads: 2, numKvHeads: 1, intermediateSize: 24, vocabSize: 32 });
const { config, params } = tiny(6);
const BASE = params as unknown as Tree;
const L = config.numLayers, D = config.hiddenSize, M = qkvWidth(config), F = config.intermediateSize, R = 2;
const SEQ = [1, 5, 9, 30, 2, 17, 8, 12, 25, 3];
const TOKENS = tensor(SEQ.slice(0, -1), [SEQ.length - 1], "int32");
const TARGETS = tensor(SEQ.slice(1), [SEQ.length - 1], "int32");
const logits = (model: Tree, c = config): Tensor => forward(model as unknown as LlamaParams, TOKENS, c);
const loss = (model: Tree): Tensor => crossEntropy(logits(model), TARGETS);

async function f32(t: Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}
async function relErr(a: Tensor, b: Tensor): Promise<number> {
  const x = await f32(a), y = await f32(b);
  let num = 0, den = 0;
  for (let i = 0; i < x.length; i++) {
    num = Math.max(num, Math.abs(x[i] - y[i]));
    den = Math.max(den, Math.abs(y[i]));
  }
  return num / (den || 1);
}
/** Adds N(0, 0.1²) noise to every adapter leaf, so every update is nonzero. */
function nudge(t: PlanTree, seed: number, where: (path: string) => boolean = () => true): PlanTree {
  const k = key(seed);
  const f = (x: Tensor, p: string) => (where(p) ? add(x, normal(foldIn(k, p), x.shape, { std: 0.1 })) : x);
  return {
    base: t.base,
    tied: tree.map(t.tied, (x, p) => f(x, `tied.${p}`)),
    sites: tree.map(t.sites, (x, p) => f(x, `sites.${p}`)),
  };
}
const at = (t: Tree, path: string) => tree.at(t, path) as Tensor;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "knot_peft_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ------------------------------------------------------------------ errors naming the pattern

Deno.test("transforms: every misuse is an Error that names the pattern or path", async (t) => {
  const CASES: { name: string; run: () => unknown; error: RegExp }[] = [
    {
      name: "adapt whose where matches no site",
      run: () => compose(adapt({ where: "layers.*.attn.nope", rank: R })).resolve(BASE),
      error: /adapt: site pattern "layers\.\*\.attn\.nope" matches no site \(candidates look like: /,
    },
    {
      name: "adapt with a predicate matching nothing",
      run: () =>
        compose(adapt({
          where: function noSite() {
            return false;
          },
          rank: R,
        })).init(BASE, key(0)),
      error: /adapt: site pattern predicate noSite matches no site/,
    },
    {
      name: "tie of mismatched shapes (A across sites of different in)",
      run: () =>
        compose(
          adapt({ where: "layers.*.mlp.{up,down}", rank: R }),
          tie({ where: "layers.*.mlp.*.A", groupBy: () => "allA" }),
        ).resolve(BASE),
      error: new RegExp(
        `tie: group "allA" of pattern "layers\\.\\*\\.mlp\\.\\*\\.A" mixes shapes: .*\\[${R}, ${D}\\].*\\[${R}, ${F}\\]`,
      ),
    },
    {
      name: "tie of a pattern that matches nothing",
      run: () => compose(tl5({ rank: R }), tie({ where: "layers.*.attn.qkv.w" })).resolve(BASE),
      error: /tie: pattern "layers\.\*\.attn\.qkv\.w" matches no adapter leaf/,
    },
    {
      name: "tie of base leaves",
      run: () => compose(lora({ rank: R }), tie({ where: "layers.*.attnNorm.weight" })).resolve(BASE),
      error: /tie: pattern "layers\.\*\.attnNorm\.weight" matches base leaves .*only adapter leaves can be tied/,
    },
    {
      name: "tie of members with different initializers (init before tie)",
      run: () =>
        compose(
          adapt({ rank: R }),
          initialize({ where: "layers.1.attn.qkv.A", with: initializers.ones }),
          tie({ where: "layers.*.attn.qkv.A" }),
        ).resolve(BASE),
      error:
        /tie: group "layers\/attn\/qkv\/A" of pattern "layers\.\*\.attn\.qkv\.A" mixes initializers: .*layers\.1\.attn\.qkv\.A/,
    },
    {
      name: "tie of members that disagree on trainability",
      run: () =>
        compose(adapt({ rank: R }), freeze({ where: "layers.0.attn.qkv.A" }), tie({ where: "layers.*.attn.qkv.A" }))
          .resolve(BASE),
      error: /tied group "layers\/attn\/qkv\/A" mixes trainable and frozen leaves/,
    },
    {
      name: "freeze of a pattern that matches nothing",
      run: () => compose(lora({ rank: R }), freeze({ where: "layers.*.attn.qkv.u" })).resolve(BASE),
      error: /freeze: pattern "layers\.\*\.attn\.qkv\.u" matches no leaf/,
    },
    {
      name: "train of a pattern that matches nothing",
      run: () => compose(lora({ rank: R }), unfreeze({ where: "layers.*.norm2.weight" })).resolve(BASE),
      error: /train: pattern "layers\.\*\.norm2\.weight" matches no leaf/,
    },
    {
      name: "initialize of a pattern that matches nothing",
      run: () =>
        compose(lora({ rank: R }), initialize({ where: "layers.*.attn.qkv.v", with: initializers.zeros })).resolve(
          BASE,
        ),
      error: /initialize: pattern "layers\.\*\.attn\.qkv\.v" matches no adapter leaf/,
    },
    {
      name: "unknown preset name",
      run: () => preset("tl7", { rank: R }),
      error: /preset: unknown method "tl7" \(known: lora, vera, tl1/,
    },
    {
      name: "non-positive rank",
      run: () => adapt({ rank: 0 }),
      error: /adapt: rank must be a positive integer, got 0/,
    },
    { name: "unknown part", run: () => adapt({ rank: R, parts: ["A", "C" as "A"] }), error: /adapt: unknown part "C"/ },
    {
      name: "the same site adapted twice",
      run: () => compose(lora({ rank: R }), adapt({ where: "layers.0.attn.qkv", rank: R })).resolve(BASE),
      error: /adapt: site "layers\.0\.attn\.qkv" already has an adapter/,
    },
    { name: "init without a key", run: () => lora({ rank: R }).init(BASE), error: /plan\.init: needs a PRNG key/ },
  ];
  for (const c of CASES) await t.step(c.name, () => void assert.throws(c.run, c.error));
});

Deno.test("plan.build: a wrong-shaped or missing leaf is an Error naming its storage path and both shapes", async (t) => {
  const plan = tl6({ rank: R });
  const { trainable, frozen } = plan.init(BASE, key(0));
  const CASES: { name: string; trainable: PlanTree; error: RegExp }[] = [
    {
      name: "tied leaf",
      trainable: { ...trainable, tied: { ...trainable.tied, "layers/attn/qkv/A": zeros([R + 1, D]) } },
      error: new RegExp(
        `plan\\.build: "tied\\.layers/attn/qkv/A" has shape \\[${R + 1}, ${D}\\], the plan expects \\[${R}, ${D}\\]`,
      ),
    },
    {
      name: "per-layer leaf",
      trainable: { ...trainable, sites: tree.set(trainable.sites, "layers.4.attn.qkv.v", zeros([M + 1])) },
      error: new RegExp(
        `plan\\.build: "sites\\.layers\\.4\\.attn\\.qkv\\.v" has shape \\[${M + 1}\\], the plan expects \\[${M}\\]`,
      ),
    },
    {
      name: "missing leaf",
      trainable: { ...trainable, tied: { ...trainable.tied, "layers/attn/qkv/B": null } },
      error:
        /plan\.build: no value for adapter leaf "layers\.0\.attn\.qkv\.B" \(stored at tied\.layers\/attn\/qkv\/B\)/,
    },
  ];
  for (const c of CASES) await t.step(c.name, () => void assert.throws(() => plan.build(c.trainable, frozen), c.error));
  assert.throws(
    () => plan.build({ A: zeros([1]) } as unknown as PlanTree, frozen),
    /trainable must be a \{base, tied, sites\} tree/,
  );
});

// ------------------------------------------------------------------ composition

Deno.test("compose(plan, transform) flattens into one list of transforms", () => {
  const p = tl5({ rank: R });
  const f = freeze({ where: "layers.*.attn.qkv.A" });
  const c = compose(p, f);
  assert.equal(c.transforms.length, p.transforms.length + 1);
  p.transforms.forEach((tr, i) => assert.equal(c.transforms[i], tr));
  assert.equal(c.transforms.at(-1), f);
  const nested = compose(compose(p), compose(compose(f)));
  assert.deepEqual(nested.transforms, c.transforms);
  // Freezing TL5's A leaves TL3's trainable set: the tied B, (d + m)r → mr.
  assert.equal(countResolved(c.resolve(BASE)).trainable, M * R);
});

Deno.test("initialize({where, with}) overrides a part, a whole tied group, and nothing else", async () => {
  const k = key(4);
  const plain = lora({ rank: R }).init(BASE, k);
  const over = compose(
    lora({ rank: R }),
    initialize({ where: "layers.*.attn.qkv.B", with: initializers.constant(0.5) }),
  ).init(
    BASE,
    k,
  );
  for (let i = 0; i < L; i++) {
    assert.ok((await f32(at(over.trainable.sites, `layers.${i}.attn.qkv.B`))).every((x) => x === 0.5));
    assert.deepEqual(
      await f32(at(over.trainable.sites, `layers.${i}.attn.qkv.A`)),
      await f32(at(plain.trainable.sites, `layers.${i}.attn.qkv.A`)),
    );
  }
  // Selecting one member of a tied group sets the group's initializer.
  const grp = compose(tl5({ rank: R }), initialize({ where: "layers.3.attn.qkv.A", with: initializers.ones })).init(
    BASE,
    k,
  );
  assert.ok((await f32(grp.trainable.tied["layers/attn/qkv/A"]!)).every((x) => x === 1));
  // The preset's init option does the same.
  const opt = tl6({ rank: R, init: { v: initializers.constant(2) } }).init(BASE, k);
  assert.ok((await f32(at(opt.trainable.sites, "layers.0.attn.qkv.v"))).every((x) => x === 2));
  // VeRA's u: 1 by default (the paper), 0.1 with uInit (PEFT's choice).
  const vera01 = vera({ rank: R, uInit: 0.1 }).init(BASE, k);
  assert.ok((await f32(at(vera01.trainable.sites, "layers.0.attn.qkv.u"))).every((x) => x === Math.fround(0.1)));
  // A preset's key option is the default key of plan.init.
  const keyed = tl6({ rank: R, key: key(3) });
  assert.deepEqual(
    await f32(keyed.init(BASE).trainable.tied["layers/attn/qkv/A"]!),
    await f32(keyed.init(BASE, key(3)).trainable.tied["layers/attn/qkv/A"]!),
  );
});

Deno.test("keys are per storage path: adding a site leaves the others' initial values bit-identical", async () => {
  const k = key(9);
  for (const name of PRESET_NAMES) {
    const one = preset(name, { rank: R });
    const a = one.init(BASE, k);
    for (
      const two of [
        compose(one, adapt({ where: "layers.*.attn.o", rank: R })),
        compose(adapt({ where: "layers.*.mlp.down", rank: 3 }), one),
      ]
    ) {
      const b = two.init(BASE, k);
      for (const side of ["trainable", "frozen"] as const) {
        for (const [g, v] of Object.entries(a[side].tied)) {
          if (v) assert.deepEqual(await f32(b[side].tied[g]!), await f32(v), `${name}: tied.${g}`);
        }
        for (const [p, v] of tree.entries(a[side].sites)) {
          assert.deepEqual(await f32(at(b[side].sites, p)), await f32(v), `${name}: ${p}`);
        }
      }
    }
  }
  // Different storage paths get different draws.
  const l = lora({ rank: R }).init(BASE, k);
  assert.notDeepEqual(
    await f32(at(l.trainable.sites, "layers.0.attn.qkv.A")),
    await f32(at(l.trainable.sites, "layers.1.attn.qkv.A")),
  );
  // and a different key changes them
  const l2 = lora({ rank: R }).init(BASE, key(10));
  assert.notDeepEqual(
    await f32(at(l2.trainable.sites, "layers.0.attn.qkv.A")),
    await f32(at(l.trainable.sites, "layers.0.attn.qkv.A")),
  );
});

Deno.test("tie with groupBy: blocks of 4 layers give ceil(L/4) stored copies", async (t) => {
  const block = (p: string) => "blk" + Math.floor(Number(p.split(".")[1]) / 4);
  for (const layers of [4, 6, 9]) {
    await t.step(`L = ${layers}`, async () => {
      const m = tiny(layers);
      const base = m.params as unknown as Tree;
      const plan = compose(
        adapt({ rank: R, init: { B: initializers.normal(0.1) } }),
        tie({ where: "layers.*.attn.qkv.A", groupBy: block }),
      );
      const { trainable, frozen } = plan.init(base, key(1));
      const blocks = Math.ceil(layers / 4);
      assert.deepEqual(Object.keys(trainable.tied).sort(), Array.from({ length: blocks }, (_, b) => `blk${b}`));
      const built = plan.build(trainable, frozen);
      for (let i = 0; i < layers; i++) {
        assert.equal(at(built, `layers.${i}.attn.qkv.A`), trainable.tied[`blk${Math.floor(i / 4)}`], `layer ${i}`);
        assert.equal(at(built, `layers.${i}.attn.qkv.B`), at(trainable.sites, `layers.${i}.attn.qkv.B`));
      }
      assert.equal(countResolved(plan.resolve(base)).trainable, blocks * R * D + layers * M * R);
      // Each block's A gets the sum of its layers' contributions: moving it moves all of them.
      const g = grad((tr: PlanTree) => crossEntropy(logits(plan.build(tr, frozen), m.config), TARGETS))(
        trainable,
      ) as PlanTree;
      assert.deepEqual(Object.keys(g.tied).sort(), Object.keys(trainable.tied).sort());
      for (const v of Object.values(g.tied)) assert.ok((await f32(v!)).some((x) => x !== 0));
    });
  }
});

Deno.test("unfreeze({where: layers.*.attnNorm.weight}) makes base norms trainable: in trainable.base, with gradients, saved", async () => {
  const plan = compose(lora({ rank: R }), unfreeze({ where: "layers.*.attnNorm.weight" }));
  const { trainable, frozen } = plan.init(BASE, key(2));
  const norms = Array.from({ length: L }, (_, i) => `layers.${i}.attnNorm.weight`);
  assert.deepEqual(tree.paths(trainable.base), norms);
  for (const p of norms) {
    assert.equal(at(trainable.base, p), at(BASE, p));
    assert.equal(tree.at(frozen.base, p), null);
  }
  assert.equal(countResolved(plan.resolve(BASE)).trainable, L * (D + M) * R + L * D);
  const built = plan.build(trainable, frozen);
  for (const p of norms) assert.equal(at(built, p), at(BASE, p));
  const g = grad((tr: PlanTree) => loss(plan.build(tr, frozen)))(trainable) as PlanTree;
  assert.deepEqual(tree.paths(g.base), norms);
  for (const p of norms) assert.ok((await f32(at(g.base, p))).some((x) => x !== 0), `no gradient at ${p}`);
  // An SGD step moves them; the rest of the base stays the same objects.
  const next = tree.zipMap(([w, gw]) => sub(w, mul(gw, 0.01)), trainable, g);
  assert.notDeepEqual(await f32(at(next.base, norms[0])), await f32(at(BASE, norms[0])));
  assert.ok(summary(plan, next, frozen).rows.some((r) => r.path === `base.${norms[0]}` && r.trainable));
  await withTempDir(async (dir) => {
    await saveAdapter(dir, plan, next, frozen);
    const file = await loadSafetensors(`${dir}/adapter.safetensors`);
    assert.deepEqual(
      Object.keys(file).filter((k) => k.startsWith("base.")).sort(),
      norms.map((p) => `base.${p}`).sort(),
    );
    const loaded = await loadAdapter(dir, BASE);
    assert.deepEqual(await f32(at(loaded.trainable.base, norms[0])), await f32(at(next.base, norms[0])));
    assert.deepEqual(
      await f32(logits(loaded.plan.build(loaded.trainable, loaded.frozen))),
      await f32(logits(plan.build(next, frozen))),
    );
    // A PEFT LoRA file cannot hold trained norms: exporting says so instead of dropping them.
    await assert.rejects(
      () => exportPeftLora(`${dir}/peft`, plan, next, frozen),
      /trains base leaves \(layers\.0\.attnNorm\.weight/,
    );
  });
});

Deno.test("adapters at attn.o and mlp.{gate,up,down}: ΔW = 0 at init, each site changes the logits once nonzero", async (t) => {
  const plan = compose(
    adapt({ where: "layers.*.attn.o", rank: R }),
    adapt({ where: "layers.*.mlp.{gate,up,down}", rank: R }),
  );
  const { trainable, frozen } = plan.init(BASE, key(5));
  assert.deepEqual(plan.resolve(BASE).sites.map((s) => s.path).filter((p) => p.startsWith("layers.0.")), [
    "layers.0.attn.o",
    "layers.0.mlp.gate",
    "layers.0.mlp.up",
    "layers.0.mlp.down",
  ]);
  const base = logits(BASE);
  assert.deepEqual(await f32(logits(plan.build(trainable, frozen))), await f32(base));
  for (const s of ["attn.o", "mlp.gate", "mlp.up", "mlp.down"]) {
    await t.step(s, async () => {
      const only = nudge(trainable, 1, (p) => p === `sites.layers.2.${s}.B`);
      const adapted = logits(plan.build(only, frozen));
      assert.ok((await relErr(adapted, base)) > 1e-4, `${s}: the adapter does not reach the forward`);
      assert.ok(
        (await relErr(logits(merge(plan, only, frozen)), adapted)) <= 1e-5,
        `${s}: merge differs from the adapted forward`,
      );
    });
  }
  // and they export to PEFT under their Hugging Face names
  const all = nudge(trainable, 2);
  await withTempDir(async (dir) => {
    await exportPeftLora(dir, plan, all, frozen);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.deepEqual(cfg.target_modules, ["down_proj", "gate_proj", "o_proj", "up_proj"]);
    const imported = await importPeftLora(dir, BASE);
    const m0 = merge(plan, all, frozen), m1 = merge(imported.plan, imported.trainable, imported.frozen);
    for (const [p, w] of tree.entries(m0)) assert.ok((await relErr(at(m1, p), w)) <= 1e-6, p);
  });
});

Deno.test("exportPeftLora: a module adapted at two sites (fused qkv and q) exports exactly, ranks concatenated", async () => {
  const plan = compose(tl6({ rank: R }), adapt({ where: "layers.*.attn.q", rank: 3 }));
  const init = plan.init(BASE, key(6));
  const trainable = nudge(init.trainable, 3), frozen = nudge(init.frozen, 4);
  await withTempDir(async (dir) => {
    await exportPeftLora(dir, plan, trainable, frozen);
    const file = await loadSafetensors(`${dir}/adapter_model.safetensors`);
    assert.deepEqual(file["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].shape, [R + 3, D]);
    assert.deepEqual(file["base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"].shape, [R, D]);
    const imported = await importPeftLora(dir, BASE);
    const m0 = merge(plan, trainable, frozen), m1 = merge(imported.plan, imported.trainable, imported.frozen);
    for (const [p, w] of tree.entries(m0)) assert.ok((await relErr(at(m1, p), w)) <= 1e-6, p);
    assert.ok((await relErr(logits(m1), logits(plan.build(trainable, frozen)))) <= 1e-5);
  });
});

// ------------------------------------------------------------------ summary

Deno.test("summary: the table names every leaf (tied once, per-layer rows folded) and the P%", async (t) => {
  for (const name of PRESET_NAMES) {
    await t.step(name, () => {
      const plan: Plan = preset(name, { rank: R });
      const { trainable, frozen } = plan.init(BASE, key(0));
      const s = summary(plan, trainable, frozen);
      const text = s.toString();
      for (const row of s.rows) {
        const shown = row.group ? `tied.${row.group}` : row.path.replace(/^layers\.\d+\./, `layers.{0..${L - 1}}.`);
        assert.ok(text.includes(shown), `${name}: "${shown}" missing from\n${text}`);
        if (row.group) assert.ok(text.includes(`×${L}`), `${name}: tie group size missing`);
      }
      for (const part of new Set(s.rows.map((r) => r.path.split(/[./]/).at(-1)))) {
        assert.ok(text.match(new RegExp(`[./]${part}\\b`)));
      }
      assert.ok(text.includes(`${s.percentOfLora.toFixed(2)}% of LoRA at r=${R}`), text);
      assert.ok(text.includes(s.trainable.toLocaleString("en-US")), text);
      assert.ok(text.startsWith("leaf"), text);
      assert.ok(text.includes(name.toUpperCase()), text);
      if (s.frozenAdapter) assert.ok(text.includes("frozen"), text);
    });
  }
});

// ------------------------------------------------------------------ known gaps (documented, not yet fixed)

Deno.test("adapt refuses an embedding table (a lookup, not a linear map) by name", () => {
  assert.throws(
    () => compose(adapt({ where: "embed", rank: R })).resolve(BASE),
    /adapt: "embed" is an embedding table/,
  );
  // A broad pattern simply does not offer it: every adapted site is a linear the forward applies.
  const sites = compose(adapt({ where: "**", rank: R })).resolve(BASE).sites.map((s) => s.path);
  assert.ok(!sites.includes("embed"));
});
