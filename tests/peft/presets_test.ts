// The eight presets of TIED_LORA.md §2 (LoRA, VeRA, TL1–TL6), table-driven:
// one table (SPEC) written out from the spec, one set of property tests over it.
//
// - trainable counts from shapes against the spec's formulas (LLaMA2-7B, GPT-2B, GQA) and its P%;
// - the materialised leaves: which of A/B/u/v exist, trainable/frozen, tied (object identity), init;
// - ΔW = 0 at initialization (logits bit-identical to the base model's);
// - grad of a tied leaf = Σ over layers of the grads of the same leaves untied;
// - frozen leaves get no gradient and do not move under an SGD step;
// - merge ≡ adapted forward; unmerge(merge) = base;
// - PEFT LoRA export → import → merge ≡ merge; adapter_config.json and key layout; lora_alpha scaling;
// - saveAdapter → loadAdapter bit-identical, tied leaves stored once.
import assert from "node:assert/strict";
import { add, grad, matmul, mul, sub, type Tensor, tensor, type Tree, tree } from "../../mod.ts";
import { crossEntropy } from "../../core/nn.ts";
import { foldIn, key, normal } from "../../core/random.ts";
import { forward, type LlamaParams, qkvWidth, randomLlama } from "../../llama/mod.ts";
import {
  adapt,
  compose,
  countTrainable,
  freeze,
  merge,
  type Part,
  type Plan,
  type PlanTree,
  preset,
  PRESET_NAMES,
  summary,
  unmerge,
} from "../../peft/mod.ts";
import { exportPeftLora, importPeftLora, loadAdapter, saveAdapter } from "../../io/adapter.ts";
import { loadSafetensors, saveSafetensors } from "../../io/safetensors.ts";

// ------------------------------------------------------------------ the spec table (TIED_LORA.md §2)

type Init = "zeros" | "ones" | "normal" | "kaiming";
interface LeafSpec {
  trainable: boolean;
  /** Tied across layers (one stored tensor), else one per layer. */
  tied: boolean;
  init: Init;
}
interface Dims {
  L: number;
  d: number;
  r: number;
  /** Output width of the fused Q|K|V map: 3d without GQA, d + 2·kvHidden with it. */
  m: number;
}
interface Row {
  /** The leaves that exist; an absent part is the paper's "frozen 1" (the same as no vector). */
  leaves: Partial<Record<Part, LeafSpec>>;
  /** The spec's formula, as written there (3d → m under GQA). */
  formula: string;
  count: (x: Dims) => number;
  /** P% of LoRA's count quoted by the spec for LLaMA2-7B at r = 8. */
  p7b: string;
}
const train = (init: Init, tied = true): LeafSpec => ({ trainable: true, tied, init });
const frozen = (init: Init, tied = true): LeafSpec => ({ trainable: false, tied, init });

const SPEC: Record<string, Row> = {
  lora: {
    leaves: { A: train("kaiming", false), B: train("zeros", false) },
    formula: "4Ldr",
    count: ({ L, d, r, m }) => L * (d + m) * r,
    p7b: "100.00",
  },
  vera: {
    leaves: { A: frozen("kaiming"), B: frozen("kaiming"), u: train("ones", false), v: train("zeros", false) },
    formula: "L(r + 3d)",
    count: ({ L, r, m }) => L * (r + m),
    p7b: "9.38",
  },
  tl1: { leaves: { A: train("zeros"), B: frozen("normal") }, formula: "dr", count: ({ d, r }) => d * r, p7b: "0.78" },
  tl2: {
    leaves: { A: train("normal"), B: frozen("normal"), u: train("ones", false), v: train("zeros", false) },
    formula: "dr + L(r + 3d)",
    count: ({ L, d, r, m }) => d * r + L * (r + m),
    p7b: "10.16",
  },
  tl3: { leaves: { A: frozen("normal"), B: train("zeros") }, formula: "3dr", count: ({ r, m }) => m * r, p7b: "2.34" },
  tl4: {
    leaves: { A: frozen("normal"), B: train("zeros"), u: train("ones", false) },
    formula: "3dr + Lr",
    count: ({ L, r, m }) => m * r + L * r,
    p7b: "2.35",
  },
  tl5: {
    leaves: { A: train("normal"), B: train("zeros") },
    formula: "4dr",
    count: ({ d, r, m }) => (d + m) * r,
    p7b: "3.13",
  },
  tl6: {
    leaves: { A: train("normal"), B: train("normal"), u: train("ones", false), v: train("zeros", false) },
    formula: "4dr + L(r + 3d)",
    count: ({ L, d, r, m }) => (d + m) * r + L * (r + m),
    p7b: "12.51",
  },
};
const NAMES = Object.keys(SPEC);
const PARTS: Part[] = ["A", "B", "u", "v"];
const RANKS = [2, 4, 8, 16, 32, 64, 128];
const MODELS = [{ name: "LLaMA2-7B", L: 32, d: 4096 }, { name: "GPT-2B", L: 24, d: 2048 }];

// ------------------------------------------------------------------ a tiny model (GQA: m ≠ 3d)

const { config, params } = randomLlama({
  seed: 7,
  numLayers: 3,
  hiddenSize: 32,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 48,
  vocabSize: 64,
});
const BASE = params as unknown as Tree;
const L = config.numLayers, D = config.hiddenSize, M = qkvWidth(config), R = 4;
const KV = config.numKvHeads * config.headDim;
const SEQ = [1, 17, 40, 5, 33, 42, 7, 60, 3, 21, 9, 50, 11];
const TOKENS = tensor(SEQ.slice(0, -1), [SEQ.length - 1], "int32");
const TARGETS = tensor(SEQ.slice(1), [SEQ.length - 1], "int32");

const logits = (model: Tree): Tensor => forward(model as unknown as LlamaParams, TOKENS, config);
const loss = (model: Tree): Tensor => crossEntropy(logits(model), TARGETS);
const tiedName = (p: Part) => `layers/attn/qkv/${p}`;
const site = (i: number, p: Part) => `layers.${i}.attn.qkv.${p}`;

function make(name: string): { plan: Plan; trainable: PlanTree; frozen: PlanTree } {
  const plan = preset(name, { rank: R });
  return { plan, ...plan.init(BASE, key(1)) };
}

/** Adds N(0, std²) noise to every adapter leaf (not the base), so updates and gradients are nonzero. */
function nudge(t: PlanTree, seed: number, std = 0.1): PlanTree {
  const k = key(seed);
  const f = (x: Tensor, p: string) => add(x, normal(foldIn(k, p), x.shape, { std }));
  return {
    base: t.base,
    tied: tree.map(t.tied, (x, p) => f(x, `tied.${p}`)),
    sites: tree.map(t.sites, (x, p) => f(x, `sites.${p}`)),
  };
}

function nudged(name: string) {
  const m = make(name);
  return { plan: m.plan, trainable: nudge(m.trainable, 11), frozen: nudge(m.frozen, 12) };
}

async function f32(t: Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

/** max |a − b| / max |b|. */
async function relErr(a: Tensor, b: Tensor): Promise<number> {
  assert.deepEqual(a.shape, b.shape);
  const x = await f32(a), y = await f32(b);
  let num = 0, den = 0;
  for (let i = 0; i < x.length; i++) {
    num = Math.max(num, Math.abs(x[i] - y[i]));
    den = Math.max(den, Math.abs(y[i]));
  }
  return num / (den || 1);
}

/** ‖a − b‖₂ / ‖b‖₂. */
async function relNormErr(a: Tensor, b: Tensor): Promise<number> {
  assert.deepEqual(a.shape, b.shape);
  const x = await f32(a), y = await f32(b);
  let num = 0, den = 0;
  for (let i = 0; i < x.length; i++) {
    num += (x[i] - y[i]) ** 2;
    den += y[i] ** 2;
  }
  return Math.sqrt(num / (den || 1));
}

async function assertBitIdentical(a: Tree, b: Tree, what: string): Promise<void> {
  const ea = tree.entries(a), eb = tree.entries(b);
  assert.deepEqual(ea.map(([p]) => p), eb.map(([p]) => p), `${what}: paths differ`);
  for (let i = 0; i < ea.length; i++) {
    assert.deepEqual(ea[i][1].shape, eb[i][1].shape, `${what}: ${ea[i][0]} shape`);
    assert.deepEqual(await f32(ea[i][1]), await f32(eb[i][1]), `${what}: ${ea[i][0]} differs`);
  }
}

/** The node at `path`, or null where there is none. */
function maybeAt(t: Tree, path: string): Tree {
  try {
    return tree.at(t, path) ?? null;
  } catch {
    return null;
  }
}

const sumOf = (ts: Tensor[]) => ts.reduce((acc, t) => add(acc, t));
const sizeOf = (t: Tree) => tree.leaves(t).reduce((n, x) => n + x.size, 0);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "knot_peft_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ------------------------------------------------------------------ counts

Deno.test("presets: the spec table covers exactly the presets", () => {
  assert.deepEqual([...PRESET_NAMES].sort(), [...NAMES].sort());
});

Deno.test("presets: countTrainable equals the spec's formulas (LLaMA2-7B, GPT-2B; r = 2 … 128)", () => {
  for (const name of NAMES) {
    for (const { name: model, L, d } of MODELS) {
      for (const r of RANKS) {
        const got = countTrainable(name, { layers: L, hidden: d, rank: r });
        assert.equal(
          got,
          SPEC[name].count({ L, d, r, m: 3 * d }),
          `${name} ${SPEC[name].formula} on ${model} at r=${r}`,
        );
      }
    }
  }
  // Spot values, computed by hand from the formulas (guards the table itself).
  assert.equal(countTrainable("lora", { layers: 32, hidden: 4096, rank: 8 }), 4194304);
  assert.equal(countTrainable("tl6", { layers: 32, hidden: 4096, rank: 8 }), 524544);
  assert.equal(countTrainable("vera", { layers: 24, hidden: 2048, rank: 128 }), 24 * (128 + 3 * 2048));
});

Deno.test("presets: P% of LoRA for LLaMA2-7B at r=8 is the spec's 9.38 / 0.78 / 10.16 / 2.34 / 2.35 / 3.13 / 12.51", () => {
  const dims = { layers: 32, hidden: 4096, rank: 8 };
  const lora = countTrainable("lora", dims);
  for (const name of NAMES) {
    assert.equal(((100 * countTrainable(name, dims)) / lora).toFixed(2), SPEC[name].p7b, name);
  }
});

Deno.test("presets: with GQA (kvHidden ≠ hidden) 3d becomes m = d + 2·kvHidden", () => {
  for (const name of NAMES) {
    for (const r of [2, 8, 64]) {
      const dims = { layers: 32, hidden: 4096, kvHidden: 1024, rank: r };
      assert.equal(
        countTrainable(name, dims),
        SPEC[name].count({ L: 32, d: 4096, r, m: 4096 + 2 * 1024 }),
        `${name} r=${r}`,
      );
    }
  }
});

Deno.test("presets: on the tiny GQA model, summary counts = formula = elements materialised; P% from summary", () => {
  assert.notEqual(M, 3 * D, "the tiny model should use GQA");
  const loraCount = SPEC.lora.count({ L, d: D, r: R, m: M });
  for (const name of NAMES) {
    const { plan, trainable, frozen } = make(name);
    const s = summary(plan, trainable, frozen);
    const want = SPEC[name].count({ L, d: D, r: R, m: M });
    assert.equal(s.trainable, want, name);
    assert.equal(sizeOf(trainable), want, `${name}: elements in the trainable tree`);
    assert.equal(s.loraTrainable, loraCount);
    assert.ok(Math.abs(s.percentOfLora - (100 * want) / loraCount) < 1e-9, name);
    const frozenAdapter = sizeOf({ tied: frozen.tied, sites: frozen.sites });
    assert.equal(s.frozenAdapter, frozenAdapter, `${name}: frozen adapter elements`);
  }
});

// ------------------------------------------------------------------ materialised leaves

async function checkInit(what: string, t: Tensor, init: Init): Promise<void> {
  const x = await f32(t);
  const n = x.length;
  const mean = x.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  if (init === "zeros") assert.ok(x.every((e) => e === 0), `${what}: not all exactly 0`);
  else if (init === "ones") assert.ok(x.every((e) => e === 1), `${what}: not all exactly 1`);
  else if (init === "normal") {
    assert.ok(Math.abs(mean) < 0.25 && Math.abs(std - 1) < 0.2, `${what}: N(0,1)? mean ${mean}, std ${std} over ${n}`);
  } else {
    // torch.nn.Linear's default: U(±1/√fanIn), fanIn = the last axis (d for A).
    const bound = 1 / Math.sqrt(t.shape[t.rank - 1]);
    const maxAbs = x.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
    assert.ok(maxAbs <= bound, `${what}: |x| ${maxAbs} > 1/√fanIn = ${bound}`);
    assert.ok(maxAbs > 0.8 * bound && Math.abs(std - bound / Math.sqrt(3)) < 0.25 * bound, `${what}: not U(±${bound})`);
  }
}

Deno.test("presets: materialised leaves match the spec table (existence, trainable/frozen, ties, shapes, init)", async (t) => {
  const shapes: Record<Part, number[]> = { A: [R, D], B: [M, R], u: [R], v: [M] };
  for (const name of NAMES) {
    await t.step(name, async () => {
      const { plan, trainable, frozen } = make(name);
      const built = plan.build(trainable, frozen);
      for (const part of PARTS) {
        const spec = SPEC[name].leaves[part];
        const atSite = (i: number) =>
          (tree.at(built, `layers.${i}.attn.qkv`) as Record<string, Tensor | undefined>)[part];
        const g = tiedName(part);
        if (!spec) {
          for (let i = 0; i < L; i++) assert.equal(atSite(i), undefined, `${name}: ${site(i, part)} should not exist`);
          assert.ok(!(g in trainable.tied) && !(g in frozen.tied), `${name}: ${part} stored as tied`);
          continue;
        }
        const [home, other] = spec.trainable ? [trainable, frozen] : [frozen, trainable];
        let values: Tensor[];
        if (spec.tied) {
          const stored = home.tied[g];
          assert.ok(stored, `${name}: tied.${g} should be in the ${spec.trainable ? "trainable" : "frozen"} tree`);
          assert.equal(other.tied[g] ?? null, null, `${name}: tied.${g} in both trees`);
          for (let i = 0; i < L; i++) {
            assert.equal(atSite(i), stored, `${name}: ${site(i, part)} is not the tied tensor`);
          }
          assert.ok(!tree.paths(trainable.sites).concat(tree.paths(frozen.sites)).some((p) => p.endsWith(`.${part}`)));
          values = [stored];
        } else {
          assert.ok(!(g in trainable.tied) && !(g in frozen.tied), `${name}: ${part} should not be tied`);
          values = Array.from({ length: L }, (_, i) => {
            const v = tree.at(home.sites, site(i, part)) as Tensor;
            assert.equal(atSite(i), v, `${name}: ${site(i, part)} is not the stored per-layer leaf`);
            assert.equal(maybeAt(other.sites, site(i, part)), null, `${name}: ${site(i, part)} in both trees`);
            return v;
          });
          assert.equal(new Set(values).size, L, `${name}: per-layer ${part} should be distinct tensors`);
        }
        for (const v of values) {
          assert.deepEqual(v.shape, shapes[part], `${name}.${part} shape`);
          await checkInit(`${name}.${part}`, v, spec.init);
        }
        if (spec.init === "kaiming" || spec.init === "normal") {
          // Random leaves drawn per storage path: distinct layers get distinct draws.
          if (!spec.tied) {
            assert.notDeepEqual(await f32(values[0]), await f32(values[1]), `${name}.${part}: same draw at two layers`);
          }
        }
      }
      // The base model is frozen and untouched by a preset.
      assert.equal(tree.leaves(trainable.base).length, 0, `${name}: base leaves made trainable`);
      assert.equal(tree.at(built, "layers.0.attn.q.weight"), params.layers[0].attn.q.weight);
    });
  }
});

Deno.test("presets: at initialization ΔW = 0 — logits bit-identical to the base model's", async (t) => {
  const base = await f32(logits(BASE));
  for (const name of NAMES) {
    await t.step(name, async () => {
      const { plan, trainable, frozen } = make(name);
      assert.deepEqual(await f32(logits(plan.build(trainable, frozen))), base);
    });
  }
});

Deno.test("presets: an absent vector equals the paper's frozen vector of ones", async () => {
  // TL5 has no u, v; adding frozen ones at u and v must not change the logits.
  const tl5 = nudged("tl5");
  const explicit = compose(
    adapt({ rank: R, parts: ["A", "B", "u", "v"] }),
    // same as tl5 plus u, v = 1 frozen
    freeze({ where: "layers.*.attn.qkv.{u,v}" }),
  );
  const e = explicit.init(BASE, key(1));
  const tiedA = tl5.trainable.tied[tiedName("A")]!, tiedB = tl5.trainable.tied[tiedName("B")]!;
  const sitesT = tree.map(e.trainable.sites, (x, p) => (p.endsWith(".A") ? tiedA : p.endsWith(".B") ? tiedB : x));
  const a = logits(tl5.plan.build(tl5.trainable, tl5.frozen));
  const b = logits(explicit.build({ ...e.trainable, sites: sitesT }, e.frozen));
  assert.ok((await relErr(b, a)) <= 1e-6);
});

// ------------------------------------------------------------------ gradients

Deno.test("presets: grad of a tied leaf = Σ over layers of the grads of the same leaves untied", async (t) => {
  for (const name of NAMES.filter((n) => Object.values(SPEC[n].leaves).some((l) => l.tied))) {
    await t.step(name, async () => {
      const spec = SPEC[name].leaves;
      const tied = nudged(name);
      const builtTied = tied.plan.build(tied.trainable, tied.frozen);
      // The same plan without the tie, composed by hand: adapt + freeze, leaves copied from the tied model.
      const parts = PARTS.filter((p) => spec[p]);
      const frozenParts = parts.filter((p) => !spec[p]!.trainable);
      const untiedPlan = compose(
        adapt({ rank: R, parts }),
        ...(frozenParts.length ? [freeze({ where: `layers.*.attn.qkv.{${frozenParts.join(",")}}` })] : []),
      );
      const u0 = untiedPlan.init(BASE, key(2));
      const copy = (pt: PlanTree): PlanTree => ({
        ...pt,
        sites: tree.map(pt.sites, (_, p) => add(tree.at(builtTied, p) as Tensor, 0)),
      });
      const untied = { trainable: copy(u0.trainable), frozen: copy(u0.frozen) };
      assert.equal(Object.keys(untied.trainable.tied).length + Object.keys(untied.frozen.tied).length, 0);

      // Differentiate w.r.t. trainable and frozen leaves, so frozen ties (VeRA, TL1–TL4) are checked too.
      const both = { argnums: [0, 1] } as const;
      const [gtT, gtF] = grad((tr: PlanTree, fr: PlanTree) => loss(tied.plan.build(tr, fr)), both)(
        tied.trainable,
        tied.frozen,
      );
      const [guT, guF] = grad((tr: PlanTree, fr: PlanTree) => loss(untiedPlan.build(tr, fr)), both)(
        untied.trainable,
        untied.frozen,
      );
      const gTied = {
        ...gtF.tied,
        ...Object.fromEntries(Object.entries(gtT.tied as Record<string, Tensor | null>).filter(([, v]) => v)),
      };
      // (trainable.sites and frozen.sites are not of one structure — keys are absent, not null — so no tree.combine.)
      const gTiedSites = new Map([...tree.entries(gtT.sites), ...tree.entries(gtF.sites)]);
      const gUntied = new Map([...tree.entries(guT.sites), ...tree.entries(guF.sites)]);
      assert.ok(
        Math.abs(
          (await loss(builtTied).item()) - (await loss(untiedPlan.build(untied.trainable, untied.frozen)).item()),
        ) < 1e-6,
      );
      for (const p of parts) {
        const perLayer = Array.from({ length: L }, (_, i) => gUntied.get(site(i, p))!);
        if (spec[p]!.tied) {
          const g = gTied[tiedName(p)] as Tensor;
          assert.ok(
            Math.sqrt(await f32(mul(g, g)).then((x) => x.reduce((a, b) => a + b, 0))) > 0,
            `${name}.${p}: zero gradient`,
          );
          const err = await relNormErr(g, sumOf(perLayer));
          assert.ok(err <= 1e-5, `${name}.${p}: tied grad vs Σ untied, rel err ${err}`);
          // and the layers really contribute differently (not a trivial identity)
          assert.ok((await relNormErr(perLayer[0], perLayer[1])) > 1e-3, `${name}.${p}: per-layer grads identical`);
        } else {
          for (let i = 0; i < L; i++) {
            const err = await relNormErr(gTiedSites.get(site(i, p))!, perLayer[i]);
            assert.ok(err <= 1e-5, `${name}.${site(i, p)}: per-layer grad differs, rel err ${err}`);
          }
        }
      }
    });
  }
});

Deno.test("presets: frozen leaves get no gradient and stay bit-identical through an SGD step", async (t) => {
  const lr = 1e-3;
  for (const name of NAMES) {
    await t.step(name, async () => {
      const { plan, trainable, frozen } = nudged(name);
      const frozenBefore = tree.map(frozen as unknown as Tree, (x) => add(x, 0)); // a copy of every frozen value
      const lossOf = (tr: PlanTree) => loss(plan.build(tr, frozen));
      const g = grad(lossOf)(trainable) as PlanTree;
      // The gradient tree has exactly the trainable leaves; no frozen leaf appears in it.
      assert.deepEqual(tree.paths(g), tree.paths(trainable));
      const frozenPaths = new Set(tree.paths(frozen));
      assert.deepEqual(tree.paths(g).filter((p) => frozenPaths.has(p)), []);
      assert.equal(
        tree.paths(g).length,
        Object.values(SPEC[name].leaves).reduce((n, l) => n + (l.trainable ? (l.tied ? 1 : L) : 0), 0),
        `${name}: number of trainable leaves`,
      );
      for (const [p, gl] of tree.entries(g)) {
        assert.ok((await f32(gl)).some((x) => x !== 0), `${name}: zero gradient at ${p}`);
      }
      // A plain SGD step over the trainable tree only.
      const next = tree.zipMap(([w, gw]) => sub(w, mul(gw, lr)), trainable, g);
      for (const [p, w] of tree.entries(next)) {
        assert.notDeepEqual(await f32(w), await f32(tree.at(trainable, p) as Tensor), `${name}: ${p} did not move`);
      }
      const before = await loss(plan.build(trainable, frozen)).item();
      const after = await loss(plan.build(next, frozen)).item();
      assert.ok(after < before, `${name}: loss ${before} → ${after} did not fall`);
      await assertBitIdentical(frozen as unknown as Tree, frozenBefore, `${name}: frozen tree`);
    });
  }
});

// ------------------------------------------------------------------ merge

Deno.test("presets: merged logits = adapted logits; unmerge(merge) = base", async (t) => {
  const baseLogits = logits(BASE);
  const sitePaths = new Set(
    ["q", "k", "v"].flatMap((m) => Array.from({ length: L }, (_, i) => `layers.${i}.attn.${m}.weight`)),
  );
  for (const name of NAMES) {
    await t.step(name, async () => {
      const { plan, trainable, frozen } = nudged(name);
      const adapted = logits(plan.build(trainable, frozen));
      assert.ok((await relErr(adapted, baseLogits)) > 1e-3, `${name}: the update is zero`);
      const merged = merge(plan, trainable, frozen);
      assert.deepEqual(tree.paths(merged), tree.paths(BASE), `${name}: merged tree has other leaves than the base`);
      const err = await relErr(logits(merged), adapted);
      assert.ok(err <= 1e-5, `${name}: merged vs adapted logits, rel err ${err}`);
      const back = unmerge(plan, trainable, frozen, merged);
      for (const [p, w0] of tree.entries(BASE)) {
        const w1 = tree.at(back, p) as Tensor, wm = tree.at(merged, p) as Tensor;
        if (!sitePaths.has(p)) {
          assert.equal(w1, w0, `${name}: ${p} should be untouched`);
          continue;
        }
        const [a, b, c] = [await f32(w0), await f32(w1), await f32(wm)];
        assert.notDeepEqual(c, a, `${name}: ${p} unchanged by merge`);
        for (let i = 0; i < a.length; i++) {
          // (W + Δ) − Δ in float32: within a couple of roundings of the larger operand.
          const tol = 2 ** -22 * (Math.abs(a[i]) + Math.abs(c[i]));
          if (Math.abs(b[i] - a[i]) > tol) assert.fail(`${name}: ${p}[${i}] ${b[i]} vs ${a[i]} (tol ${tol})`);
        }
      }
    });
  }
});

// ------------------------------------------------------------------ PEFT LoRA interop

Deno.test("presets: exportPeftLora → importPeftLora → merge = merge of the plan; config and key layout", async (t) => {
  const outs: Record<string, number> = { q_proj: config.numHeads * config.headDim, k_proj: KV, v_proj: KV };
  for (const name of NAMES) {
    await t.step(name, () =>
      withTempDir(async (dir) => {
        const { plan, trainable, frozen } = nudged(name);
        await exportPeftLora(dir, plan, trainable, frozen);
        const cfg = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
        assert.equal(cfg.peft_type, "LORA");
        assert.equal(cfg.r, R);
        assert.equal(cfg.lora_alpha, R);
        assert.deepEqual(cfg.target_modules, ["k_proj", "q_proj", "v_proj"]);
        const file = await loadSafetensors(`${dir}/adapter_model.safetensors`);
        const want = new Map<string, number[]>();
        for (let i = 0; i < L; i++) {
          for (const [m, out] of Object.entries(outs)) {
            want.set(`base_model.model.model.layers.${i}.self_attn.${m}.lora_A.weight`, [R, D]);
            want.set(`base_model.model.model.layers.${i}.self_attn.${m}.lora_B.weight`, [out, R]);
          }
        }
        assert.deepEqual(Object.keys(file).sort(), [...want.keys()].sort());
        for (const [k, shape] of want) assert.deepEqual(file[k].shape, shape, k);
        // Spec §4: lora_A = diag(u_l)·A is the same for q, k and v of a layer.
        for (let i = 0; i < L; i++) {
          const a = (m: string) => f32(file[`base_model.model.model.layers.${i}.self_attn.${m}.lora_A.weight`]);
          assert.deepEqual(await a("k_proj"), await a("q_proj"));
          assert.deepEqual(await a("v_proj"), await a("q_proj"));
        }
        const imported = await importPeftLora(dir, BASE);
        const m0 = merge(plan, trainable, frozen);
        const m1 = merge(imported.plan, imported.trainable, imported.frozen);
        for (const [p, w] of tree.entries(m0)) {
          const err = await relErr(tree.at(m1, p) as Tensor, w);
          assert.ok(err <= 1e-6, `${name}: ${p} differs after the PEFT round trip (rel err ${err})`);
        }
      }));
  }
});

Deno.test("importPeftLora: a hand-written adapter with lora_alpha = 2r has B scaled by 2", () =>
  withTempDir(async (dir) => {
    const r = 2;
    const A = normal(key(5), [r, D]), B = normal(key(6), [config.numHeads * config.headDim, r]);
    await saveSafetensors(`${dir}/adapter_model.safetensors`, {
      "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight": A,
      "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight": B,
    });
    await Deno.writeTextFile(
      `${dir}/adapter_config.json`,
      JSON.stringify({ peft_type: "LORA", r, lora_alpha: 2 * r, target_modules: ["q_proj"], bias: "none" }),
    );
    const { plan, trainable, frozen } = await importPeftLora(dir, BASE);
    assert.deepEqual(await f32(tree.at(trainable.sites, "layers.1.attn.q.A") as Tensor), await f32(A));
    assert.deepEqual(await f32(tree.at(trainable.sites, "layers.1.attn.q.B") as Tensor), await f32(mul(B, 2)));
    const merged = merge(plan, trainable, frozen);
    const delta = sub(tree.at(merged, "layers.1.attn.q.weight") as Tensor, params.layers[1].attn.q.weight);
    assert.ok((await relErr(delta, mul(matmul(B, A), 2))) <= 1e-5);
    assert.equal(tree.at(merged, "layers.0.attn.q.weight"), params.layers[0].attn.q.weight);
  }));

// ------------------------------------------------------------------ knot adapter files

Deno.test("presets: saveAdapter → loadAdapter is bit-identical; tied leaves stored once", async (t) => {
  for (const name of NAMES) {
    await t.step(name, () =>
      withTempDir(async (dir) => {
        const { plan, trainable, frozen } = nudged(name);
        await saveAdapter(dir, plan, trainable, frozen);
        const file = await loadSafetensors(`${dir}/adapter.safetensors`);
        const leaves = Object.values(SPEC[name].leaves);
        const expected = leaves.filter((l) => l.tied).length + L * leaves.filter((l) => !l.tied).length;
        assert.equal(
          Object.keys(file).length,
          expected,
          `${name}: tensors in adapter.safetensors: ${Object.keys(file)}`,
        );
        assert.ok(!Object.keys(file).some((k) => k.startsWith("base.")), `${name}: base weights stored`);
        const loaded = await loadAdapter(dir, BASE);
        assert.equal(loaded.plan.meta.preset, name);
        await assertBitIdentical(
          loaded.trainable as unknown as Tree,
          trainable as unknown as Tree,
          `${name}: trainable`,
        );
        await assertBitIdentical(loaded.frozen as unknown as Tree, frozen as unknown as Tree, `${name}: frozen`);
        const rebuilt = loaded.plan.build(loaded.trainable, loaded.frozen);
        for (const [p, l] of Object.entries(SPEC[name].leaves)) {
          if (!l.tied) continue;
          const at0 = tree.at(rebuilt, site(0, p as Part));
          for (let i = 1; i < L; i++) {
            assert.equal(tree.at(rebuilt, site(i, p as Part)), at0, `${name}: ${p} no longer tied`);
          }
        }
        assert.deepEqual(await f32(logits(rebuilt)), await f32(logits(plan.build(trainable, frozen))));
      }));
  }
});

Deno.test("preset: names of Object's members are unknown methods, not Object's functions", () => {
  for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    assert.throws(() => preset(name, { rank: 2 }), new RegExp(`preset: unknown method "${name}"`));
  }
  assert.equal(typeof preset("TL6", { rank: 2 }).init, "function");
});
