// The Llama forward, its KV cache, RoPE, differentiability, low-rank update
// sites, the HF save/load round trip, the stories260K reference, and generation.
import assert from "node:assert/strict";
import {
  checkGrad,
  concat,
  dispose,
  expandDims,
  jit,
  liveBuffers,
  mul,
  slice,
  split,
  sum,
  type Tensor,
  tensor,
  tree,
  zeros,
} from "../../mod.ts";
import { foldIn, key, normal } from "../../core/random.ts";
import { loadTokenizer } from "../../io/mod.ts";
import {
  applyRope,
  blockCap,
  clearGenerateCache,
  forward,
  forwardWithCache,
  generate,
  type GenerateOptions,
  inverseFrequencies,
  keptDecodePrograms,
  type LlamaConfig,
  type LlamaParams,
  lmHead,
  type LowRankUpdate,
  MAX_BLOCK,
  qkvWidth,
  randomLlama,
  ropeTables,
  SMALL_MODEL_BLOCK,
  SMALL_MODEL_PARAMS,
} from "../../llama/mod.ts";
import { setBackend } from "../../mod.ts";
import { loadLlama, saveLlama } from "../../io/mod.ts";

const STORIES = new URL("../../../shared/models/stories260K", import.meta.url).pathname;
const haveStories = (() => {
  try {
    return Deno.statSync(`${STORIES}/model.safetensors`).isFile;
  } catch {
    return false;
  }
})();

const ids = (xs: readonly number[]) => tensor([...xs], [xs.length], "int32");

async function values(t: Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

async function maxAbsDiff(a: Tensor | Float32Array, b: Tensor | Float32Array): Promise<number> {
  const x = a instanceof Float32Array ? a : await values(a);
  const y = b instanceof Float32Array ? b : await values(b);
  assert.equal(x.length, y.length, `lengths ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

async function assertClose(a: Tensor | Float32Array, b: Tensor | Float32Array, tol: number, what: string) {
  const d = await maxAbsDiff(a, b);
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}`);
}

function argmaxRow(d: Float32Array, row: number, V: number): number {
  let best = 0;
  for (let i = 1; i < V; i++) if (d[row * V + i] > d[row * V + best]) best = i;
  return best;
}

async function collect(gen: AsyncGenerator<number>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of gen) out.push(t);
  return out;
}

const PROMPT = [1, 17, 200, 5, 99, 42, 7, 128, 3, 64];

// ---------------------------------------------------------------- save / load

for (const tied of [true, false]) {
  Deno.test(`saveLlama → loadLlama round trip is bit-identical (${tied ? "tied" : "untied"} embeddings)`, async () => {
    const { config, params } = randomLlama({ seed: 3, tieWordEmbeddings: tied });
    const dir = await Deno.makeTempDir({ prefix: "knot_llama_" });
    try {
      await saveLlama(dir, params, config);
      const loaded = await loadLlama(dir);
      assert.deepEqual(loaded.config, config);
      assert.deepEqual(tree.paths(loaded.params), tree.paths(params));
      assert.equal(!!loaded.params.lmHead, !tied);
      for (const [path, leaf] of tree.entries(params)) {
        const other = tree.at(loaded.params, path) as Tensor;
        assert.deepEqual(other.shape, leaf.shape, path);
        assert.deepEqual(await other.data(), await leaf.data(), `leaf ${path} differs after the round trip`);
      }
      const a = await values(forward(params, ids(PROMPT), config));
      const b = await values(forward(loaded.params, ids(PROMPT), config));
      assert.deepEqual(b, a, "forward of the loaded model is not bit-identical");
      dispose([loaded.params]);
    } finally {
      dispose(params);
      await Deno.remove(dir, { recursive: true });
    }
  });
}

// ---------------------------------------------------------------- KV cache, batching, hidden states

Deno.test("KV cache: prefill then token-by-token decode equals the full forward at every position", async () => {
  const { config, params } = randomLlama({ seed: 5 });
  const V = config.vocabSize, T = PROMPT.length, P = 4;
  const full = forward(params, ids(PROMPT), config); // [T, V]
  assert.deepEqual(full.shape, [T, V]);
  let { logits, cache } = forwardWithCache(params, ids(PROMPT.slice(0, P)), config, null);
  assert.deepEqual(logits.shape, [P, V]);
  assert.equal(cache.length, P);
  assert.equal(cache.layers.length, config.numLayers);
  assert.deepEqual(cache.layers[0].k.shape, [1, config.numKvHeads, P, config.headDim]);
  const parts = [logits];
  for (let t = P; t < T; t++) {
    ({ logits, cache } = forwardWithCache(params, ids([PROMPT[t]]), config, cache));
    assert.deepEqual(logits.shape, [1, V]);
    assert.equal(cache.length, t + 1);
    parts.push(logits);
  }
  await assertClose(concat(parts, 0), full, 1e-5, "cached decode vs full forward");
  // Chunked prefill (3 + 3 + 4 tokens) gives the same.
  const c1 = forwardWithCache(params, ids(PROMPT.slice(0, 3)), config, null);
  const c2 = forwardWithCache(params, ids(PROMPT.slice(3, 6)), config, c1.cache);
  const c3 = forwardWithCache(params, ids(PROMPT.slice(6)), config, c2.cache);
  await assertClose(concat([c1.logits, c2.logits, c3.logits], 0), full, 1e-5, "chunked prefill vs full forward");
  // The `cache` option of forward is the same path.
  await assertClose(
    forward(params, ids(PROMPT.slice(6)), config, { cache: c2.cache }),
    c3.logits,
    0,
    "forward({cache})",
  );
  dispose(params);
});

Deno.test("batched [B, T] forward equals the per-row forward, also with a batched KV cache", async () => {
  const { config, params } = randomLlama({ seed: 6 });
  const rows = [PROMPT.slice(0, 6), [3, 3, 250, 0, 255, 9], [1, 2, 3, 4, 5, 6]];
  const B = rows.length, T = 6, V = config.vocabSize;
  const batch = tensor(rows.flat(), [B, T], "int32");
  const all = forward(params, batch, config);
  assert.deepEqual(all.shape, [B, T, V]);
  for (let b = 0; b < B; b++) {
    const row = slice(all, [b, 0, 0], [b + 1, T, V]);
    await assertClose(row, forward(params, ids(rows[b]), config), 1e-5, `batch row ${b}`);
  }
  // Batched prefill of 4 then decode of [B, 1] twice.
  let r = forwardWithCache(params, slice(batch, [0, 0], [B, 4]), config, null);
  assert.deepEqual(r.cache.layers[1].v.shape, [B, config.numKvHeads, 4, config.headDim]);
  const parts = [r.logits];
  for (let t = 4; t < T; t++) {
    r = forwardWithCache(params, slice(batch, [0, t], [B, t + 1]), config, r.cache);
    parts.push(r.logits);
  }
  await assertClose(concat(parts, 1), all, 1e-5, "batched cached decode vs full batched forward");
  dispose(params);
});

for (const tied of [true, false]) {
  Deno.test(`returnHidden + lmHead equals the logits (${tied ? "tied" : "untied"})`, async () => {
    const { config, params } = randomLlama({ seed: 7, tieWordEmbeddings: tied });
    const hidden = forward(params, ids(PROMPT), config, { returnHidden: true });
    assert.deepEqual(hidden.shape, [PROMPT.length, config.hiddenSize]);
    const logits = forward(params, ids(PROMPT), config);
    await assertClose(lmHead(params, config, hidden), logits, 0, "lmHead(hidden) vs logits");
    dispose(params);
  });
}

Deno.test("forward refuses non-int32 tokens, rank-3 tokens and a layer-count mismatch", () => {
  const { config, params } = randomLlama({ seed: 8 });
  assert.throws(() => forward(params, tensor([1, 2]), config), /int32/);
  assert.throws(() => forward(params, tensor([1, 2], [1, 1, 2], "int32"), config), /\[T\] or \[B, T\]/);
  assert.throws(() => forward(params, ids([1]), { ...config, numLayers: 3 }), /2 layers, config says 3/);
  dispose(params);
});

// ---------------------------------------------------------------- RoPE

Deno.test("RoPE: HF rotate-half on a hand-computed case (headDim 4, positions 0 and 1, theta 10000)", async () => {
  const config = { ...randomLlama({ numLayers: 1 }).config, headDim: 4, ropeTheta: 10000 } as LlamaConfig;
  // inv_freq = [10000^(-0/4), 10000^(-2/4)] = [1, 0.01]; at position 1 the angles are 1 and 0.01.
  assert.deepEqual(Array.from(inverseFrequencies(config)), [1, 0.01]);
  const { cos, sin } = ropeTables(config, [0, 1]);
  const c0 = Math.cos(1), c1 = Math.cos(0.01), s0 = Math.sin(1), s1 = Math.sin(0.01);
  await assertClose(cos, new Float32Array([1, 1, 1, 1, c0, c1, c0, c1]), 1e-7, "cos table");
  await assertClose(sin, new Float32Array([0, 0, 0, 0, s0, s1, s0, s1]), 1e-7, "sin table");
  // x = [x0, x1, x2, x3] = [1, 2, 3, 4]: element i pairs with i + 2 (not with its neighbour).
  const x = tensor([1, 2, 3, 4, 1, 2, 3, 4], [2, 4]);
  const expected = [
    1,
    2,
    3,
    4, // position 0: unchanged
    1 * c0 - 3 * s0, // x0·cos(1) − x2·sin(1)
    2 * c1 - 4 * s1, // x1·cos(0.01) − x3·sin(0.01)
    3 * c0 + 1 * s0, // x2·cos(1) + x0·sin(1)
    4 * c1 + 2 * s1, // x3·cos(0.01) + x1·sin(0.01)
  ];
  await assertClose(applyRope(x, cos, sin), new Float32Array(expected), 1e-6, "applyRope");
});

Deno.test("RoPE: llama3 and linear rope_scaling against the published rule, all three llama3 regimes", () => {
  // headDim 8, theta 500000: wavelengths 2π·θ^(2i/8) ≈ 6.3, 167, 4443, 118143.
  // original 8192, low 1, high 4: low_freq_wavelen 8192, high_freq_wavelen 2048, so
  // i = 0, 1 are high-frequency (kept), i = 2 is in the band (smoothed), i = 3 is low-frequency (÷ factor).
  const base = { ...randomLlama({ numLayers: 1 }).config, headDim: 8, ropeTheta: 500000 } as LlamaConfig;
  const plain = [1, 500000 ** -0.25, 500000 ** -0.5, 500000 ** -0.75];
  const near = (a: number, b: number) => Math.abs(a - b) <= 1e-14 * Math.abs(b);
  const unscaled = inverseFrequencies({ ...base, ropeScaling: null });
  plain.forEach((p, i) => assert.ok(near(unscaled[i], p), `inv_freq[${i}]: ${unscaled[i]} vs ${p}`));
  const wavelen = plain.map((f) => (2 * Math.PI) / f);
  assert.ok(wavelen[1] < 2048 && wavelen[2] > 2048 && wavelen[2] < 8192 && wavelen[3] > 8192, `regimes: ${wavelen}`);
  const smooth = (8192 / wavelen[2] - 1) / (4 - 1); // (old_ctx / wavelen − low) / (high − low)
  const expected = [plain[0], plain[1], (1 - smooth) * (plain[2] / 8) + smooth * plain[2], plain[3] / 8];
  const got = inverseFrequencies({
    ...base,
    ropeScaling: {
      type: "llama3",
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    },
  });
  expected.forEach((e, i) => assert.ok(near(got[i], e), `llama3 inv_freq[${i}]: ${got[i]} vs ${e}`));
  assert.ok(got[2] > plain[2] / 8 && got[2] < plain[2], "the smoothed frequency lies between inv/8 and inv");
  const linear = inverseFrequencies({ ...base, ropeScaling: { type: "linear", factor: 4 } });
  plain.forEach((p, i) => assert.ok(near(linear[i], p / 4), `linear inv_freq[${i}]: ${linear[i]} vs ${p / 4}`));
});

// ---------------------------------------------------------------- autodiff and low-rank sites

/** A model small enough for finite differences: d=8, 2 heads over 1 KV head, headDim 4. */
function micro(seed: number) {
  return randomLlama({
    seed,
    vocabSize: 16,
    hiddenSize: 8,
    numHeads: 2,
    numKvHeads: 1,
    intermediateSize: 12,
    numLayers: 2,
  });
}

function withQkv(params: LlamaParams, layer: number, update: LowRankUpdate | null): LlamaParams {
  const layers = params.layers.map((l, i) => (i === layer ? { ...l, attn: { ...l.attn, qkv: update } } : l));
  return { ...params, layers };
}

function lowRank(
  config: LlamaConfig,
  seed: number,
  r = 2,
  scale = 0.3,
): Required<{ [K in keyof LowRankUpdate]: Tensor }> {
  const k = key(seed), m = qkvWidth(config), d = config.hiddenSize;
  return {
    A: normal(foldIn(k, "A"), [r, d], { std: scale }),
    B: normal(foldIn(k, "B"), [m, r], { std: scale }),
    u: normal(foldIn(k, "u"), [r], { mean: 1, std: 0.2 }),
    v: normal(foldIn(k, "v"), [m], { mean: 1, std: 0.2 }),
  };
}

Deno.test("the forward is differentiable: checkGrad w.r.t. a norm weight and a fused-qkv low-rank update", async () => {
  const { config, params } = micro(11);
  const tokens = ids([1, 5, 9]);
  const weights = normal(key(12), [3, config.vocabSize]);
  const sub = { attnNorm: params.layers[0].attnNorm.weight, qkv: lowRank(config, 13) };
  const f = (s: typeof sub) => {
    const layers = params.layers.map((l, i) =>
      i === 0 ? { ...l, attnNorm: { weight: s.attnNorm }, attn: { ...l.attn, qkv: s.qkv } } : l
    );
    return sum(mul(forward({ ...params, layers }, tokens, config), weights));
  };
  const report = await checkGrad(f, [sub]);
  assert.equal(report.checked, 8 + (2 * 8 + 16 * 2 + 2 + 16));
  dispose(params);
});

Deno.test("a low-rank update with B = 0 leaves the logits unchanged; a nonzero one changes them", async () => {
  const { config, params } = randomLlama({ seed: 14 });
  const base = await values(forward(params, ids(PROMPT), config));
  const up = lowRank(config, 15, 4);
  const zero = { ...up, B: zeros(up.B.shape) };
  assert.deepEqual(await values(forward(withQkv(params, 1, zero), ids(PROMPT), config)), base, "B = 0 must be exact");
  assert.deepEqual(
    await values(forward(withQkv(params, 1, null), ids(PROMPT), config)),
    base,
    "qkv: null is no update",
  );
  const changed = await maxAbsDiff(forward(withQkv(params, 1, up), ids(PROMPT), config), base);
  assert.ok(changed > 1e-3, `a nonzero update changed the logits by only ${changed}`);
  // On q / mlp sites too.
  const d = config.hiddenSize;
  const A = normal(key(16), [2, d], { std: 0.3 }),
    Bq = normal(key(17), [config.numHeads * config.headDim, 2], { std: 0.3 });
  const layers = params.layers.map((
    l,
    i,
  ) => (i === 0 ? { ...l, attn: { ...l.attn, q: { ...l.attn.q, A, B: zeros(Bq.shape) } } } : l));
  assert.deepEqual(await values(forward({ ...params, layers }, ids(PROMPT), config)), base);
  dispose(params);
});

Deno.test("the fused qkv update equals per-projection updates at attn.q, attn.k, attn.v (u, v folded in)", async () => {
  const { config, params } = randomLlama({ seed: 18 });
  const up = lowRank(config, 19, 3);
  const fused = await values(forward(withQkv(params, 0, up), ids(PROMPT), config));
  // v ⊙ (B · (u ⊙ (A·x))) = (diag(v)·B) · ((diag(u)·A)·x); the rows of B split as [q | k | v].
  const A = mul(up.A, expandDims(up.u, 1)); // [r, d], row j scaled by u_j
  const Bv = mul(up.B, expandDims(up.v, 1)); // [m, r], row i scaled by v_i
  const hd = config.headDim;
  const [Bq, Bk, Bvv] = split(Bv, [config.numHeads * hd, config.numKvHeads * hd, config.numKvHeads * hd], 0);
  const l0 = params.layers[0];
  const perProjection: LlamaParams = {
    ...params,
    layers: [
      {
        ...l0,
        attn: {
          ...l0.attn,
          q: { ...l0.attn.q, A, B: Bq },
          k: { ...l0.attn.k, A, B: Bk },
          v: { ...l0.attn.v, A, B: Bvv },
        },
      },
      ...params.layers.slice(1),
    ],
  };
  await assertClose(forward(perProjection, ids(PROMPT), config), fused, 1e-5, "per-projection vs fused qkv");
  const base = await values(forward(params, ids(PROMPT), config));
  assert.ok((await maxAbsDiff(fused, base)) > 1e-3, "the update must matter for the comparison to mean anything");
  dispose(params);
});

Deno.test("a low-rank update with only A or only B is an Error naming the site", () => {
  const { config, params } = randomLlama({ seed: 20 });
  const up = lowRank(config, 21);
  assert.throws(
    () => forward(withQkv(params, 1, { A: up.A }), ids([1, 2]), config),
    /layers\.1\.attn\.qkv.*both A and B/,
  );
  assert.throws(() => forward(withQkv(params, 0, { A: up.B, B: up.A }), ids([1, 2]), config), /layers\.0\.attn\.qkv/);
  dispose(params);
});

// ---------------------------------------------------------------- generation

Deno.test("generate: temperature 0 is greedy (argmax of the full forward, step by step)", async () => {
  const { config, params } = randomLlama({ seed: 22 });
  const prompt = PROMPT.slice(0, 4), n = 8, V = config.vocabSize;
  const expected: number[] = [];
  const seq = [...prompt];
  for (let i = 0; i < n; i++) {
    const d = await values(forward(params, ids(seq), config));
    const next = argmaxRow(d, seq.length - 1, V);
    expected.push(next);
    seq.push(next);
  }
  const got = await collect(generate(params, config, prompt, { maxTokens: n, stop: [] }));
  assert.deepEqual(got, expected);
  assert.deepEqual(
    await collect(generate(params, config, prompt, { maxTokens: n, stop: [], temperature: 0, key: key(9) })),
    expected,
  );
  // onLogits at step 0 sees the last prompt position.
  const full = await values(forward(params, ids(prompt), config));
  let step0: Float32Array | null = null;
  await collect(
    generate(params, config, prompt, { maxTokens: 2, stop: [], onLogits: (l, s) => s === 0 && (step0 = l) }),
  );
  await assertClose(step0!, full.slice((prompt.length - 1) * V), 1e-5, "onLogits step 0");
  dispose(params);
});

Deno.test("generate: the jitted decode's logits are bit-identical to the eager decode's, every step", async () => {
  const { config, params } = randomLlama({ seed: 24, numKvHeads: 2 });
  const run = async (jit: boolean) => {
    const logits: Float32Array[] = [];
    const ids = await collect(
      generate(params, config, [1, 9, 4], { maxTokens: 12, stop: [], jit, onLogits: (l) => logits.push(l.slice()) }),
    );
    return { ids, logits };
  };
  const [eager, jitted] = [await run(false), await run(true)];
  assert.deepEqual(jitted.ids, eager.ids);
  assert.equal(jitted.logits.length, 12);
  jitted.logits.forEach((l, i) => assert.deepEqual(new Uint32Array(l.buffer), new Uint32Array(eager.logits[i].buffer)));
  dispose(params);
});

Deno.test("generate: greedy blocks (several tokens per jitted program) decode what eager decoding does", async () => {
  const { config, params } = randomLlama({ seed: 26, numKvHeads: 2 });
  const run = async (jit: boolean, opts: GenerateOptions = {}, cfg = config) => {
    const logits: Float32Array[] = [];
    const ids = await collect(
      generate(params, cfg, [1, 9, 4], { stop: [], jit, onLogits: (l) => logits.push(l.slice()), ...opts }),
    );
    return { ids, logits };
  };
  // 139 decode steps: two blocks of 64 (a model this small: SMALL_MODEL_BLOCK), then one of 16 for the last 11
  // (past the positions needed), over a cache of 256; the first attends to a window of 128 slots, the last two to
  // all 256.
  const n = 140, cap = blockCap(params);
  assert.equal(cap, SMALL_MODEL_BLOCK);
  const eager = await run(false, { maxTokens: n });
  const jitted = await run(true, { maxTokens: n });
  assert.deepEqual(jitted.ids, eager.ids);
  assert.equal(jitted.logits.length, n);
  jitted.logits.forEach((l, i) => assert.deepEqual(new Uint32Array(l.buffer), new Uint32Array(eager.logits[i].buffer)));
  // Without onLogits (a program that returns tokens only), stopped inside a block, bounded by the context.
  assert.deepEqual(await collect(generate(params, config, [1, 9, 4], { maxTokens: n, stop: [] })), eager.ids);
  const stopAt = eager.ids.findIndex((t, i) => i > 1 && eager.ids.indexOf(t) === i); // inside the first block
  assert.ok(stopAt > 0, `no usable stop token in ${eager.ids}`);
  const stopped = await collect(generate(params, config, [1, 9, 4], { maxTokens: n, stop: [eager.ids[stopAt]] }));
  assert.deepEqual(stopped, eager.ids.slice(0, stopAt));
  const short = { ...config, maxPositionEmbeddings: 3 + cap + 5 }; // ends inside the second block
  const bounded = await collect(generate(params, short, [1, 9, 4], { maxTokens: n, stop: [] }));
  assert.deepEqual(bounded, eager.ids.slice(0, cap + 6));
  clearGenerateCache();
  dispose(params);
});

Deno.test("generate: greedy blocks of SMALL_MODEL_BLOCK steps up to SMALL_MODEL_PARAMS weights, MAX_BLOCK past them", () => {
  const weights = (n: number) => ({ embed: zeros([n]) }) as unknown as LlamaParams;
  const [small, large] = [weights(SMALL_MODEL_PARAMS), weights(SMALL_MODEL_PARAMS + 1)];
  assert.equal(blockCap(small), SMALL_MODEL_BLOCK);
  assert.equal(blockCap(large), MAX_BLOCK);
  assert.ok(SMALL_MODEL_BLOCK > MAX_BLOCK);
  dispose([small, large]);
});

Deno.test("generate: sampling is deterministic for a key, differs across keys; topK 1 is greedy", async () => {
  const { config, params } = randomLlama({ seed: 23 });
  const prompt = [1, 50, 60], n = 12;
  const opts = (k: number, extra: GenerateOptions = {}) => ({
    maxTokens: n,
    stop: [],
    temperature: 1,
    key: key(k),
    ...extra,
  });
  const a = await collect(generate(params, config, prompt, opts(1)));
  const b = await collect(generate(params, config, prompt, opts(1)));
  assert.equal(a.length, n);
  assert.deepEqual(b, a, "same key, same tokens");
  const others = [
    await collect(generate(params, config, prompt, opts(2))),
    await collect(generate(params, config, prompt, opts(3))),
  ];
  assert.ok(others.every((o) => JSON.stringify(o) !== JSON.stringify(a)), "different keys gave identical samples");
  const greedy = await collect(generate(params, config, prompt, { maxTokens: n, stop: [] }));
  assert.notDeepEqual(a, greedy, "temperature 1 should not just be greedy here");
  assert.deepEqual(await collect(generate(params, config, prompt, opts(4, { topK: 1 }))), greedy, "topK 1 = greedy");
  assert.deepEqual(
    await collect(generate(params, config, prompt, opts(5, { topP: 1e-6 }))),
    greedy,
    "tiny topP = greedy",
  );
  dispose(params);
});

Deno.test("generate: a stop token ends generation (not yielded); the config's EOS is the default stop", async () => {
  const { config, params } = randomLlama({ seed: 24 });
  const prompt = [1, 7, 8];
  const greedy = await collect(generate(params, config, prompt, { maxTokens: 10, stop: [] }));
  const stopAt = greedy.findIndex((t, i) => i >= 2 && greedy.indexOf(t) === i); // first occurrence, not at the start
  assert.ok(stopAt >= 2, `no usable stop token in ${greedy}`);
  const stopped = await collect(generate(params, config, prompt, { maxTokens: 10, stop: [greedy[stopAt]] }));
  assert.deepEqual(stopped, greedy.slice(0, stopAt));
  const asEos = await collect(
    generate(params, { ...config, eosTokenId: [99999, greedy[stopAt]] }, prompt, { maxTokens: 10 }),
  );
  assert.deepEqual(asEos, greedy.slice(0, stopAt));
  dispose(params);
});

Deno.test("generate: bad prompts are Errors; no buffers leak", async () => {
  const { config, params } = randomLlama({ seed: 25 });
  for (const bad of [[1, config.vocabSize], [-1], [1, 2.5]]) {
    await assert.rejects(() => collect(generate(params, config, bad, { maxTokens: 2 })), /outside the vocabulary/);
  }
  await assert.rejects(() => collect(generate(params, config, [], { maxTokens: 2 })), /at least one token/);
  clearGenerateCache();
  const before = liveBuffers();
  await collect(generate(params, config, [1, 2, 3], { maxTokens: 5, stop: [] }));
  const kept = liveBuffers(); // the decode program kept for the next call of these shapes (its constants)
  await collect(generate(params, config, [1, 2, 3], { maxTokens: 5, stop: [] }));
  assert.equal(liveBuffers(), kept, "a second call of the same shapes reuses the kept program");
  const early = generate(params, config, [1, 2, 3], { maxTokens: 5, stop: [] });
  await early.next();
  await early.return(undefined); // abandoning the stream frees its cache too
  assert.equal(liveBuffers(), kept, "generate leaked buffers");
  // Other block sizes, windows, cache lengths, logits returned or not, sampling: other programs, a bounded number.
  assert.deepEqual(keptDecodePrograms(), { steps: 0, blocks: 1 });
  await collect(generate(params, config, [1, 2, 3, 4], { maxTokens: 5, stop: [] }));
  assert.deepEqual(keptDecodePrograms(), { steps: 0, blocks: 1 }, "another prompt length, the same program");
  for (let n = 2; n < 40; n += 3) {
    for (const extra of [{}, { onLogits: () => {} }, { temperature: 1 }]) {
      await collect(generate(params, config, [1, 2, 3], { maxTokens: n, stop: [], ...extra }));
    }
  }
  // Sampling made two step programs (caches of 32 and 64); greedy made more than eight blocks and keeps eight.
  assert.deepEqual(keptDecodePrograms(), { steps: 2, blocks: 8 }, "the kept programs are bounded");
  clearGenerateCache();
  assert.equal(liveBuffers(), before, "clearGenerateCache frees what generate kept");
  // The context length bounds generation.
  const short = await collect(
    generate(params, { ...config, maxPositionEmbeddings: 6 }, [1, 2, 3], { maxTokens: 10, stop: [] }),
  );
  assert.equal(short.length, 4, "prompt 3 + 3 decoded inputs fill 6 positions, the 4th token comes from position 5");
  dispose(params);
});

// ---------------------------------------------------------------- stories260K reference

interface ReferenceCase {
  prompt_text: string;
  prompt_ids: number[];
  last_logits_full: number[];
  per_position_argmax: number[];
  greedy_32: number[];
}

if (!haveStories) {
  Deno.test({ name: `stories260K reference (skipped: ${STORIES} absent)`, ignore: true, fn() {} });
} else {
  const webgpuError = await setBackend("webgpu").then(() => null, (e: Error) => e.message);
  await setBackend("cpu");
  for (const [backend, tol] of [["cpu", 1e-4], ["webgpu", 1e-3]] as const) {
    const skip = backend === "webgpu" && webgpuError;
    Deno.test({
      name:
        `[${backend}] stories260K: logits (±${tol}) eager and jitted, per-position argmax, greedy_32 (jitted decode) and prompt ids match reference.json${
          skip ? ` (skipped: ${webgpuError})` : ""
        }`,
      ignore: !!skip,
      fn: async () => {
        await setBackend(backend);
        const { config, params } = await loadLlama(STORIES);
        const tok = await loadTokenizer(STORIES);
        const ref = JSON.parse(await Deno.readTextFile(`${STORIES}/reference.json`)) as { cases: ReferenceCase[] };
        assert.ok(ref.cases.length >= 1);
        const V = config.vocabSize;
        assert.equal(V, 512);
        for (const c of ref.cases) {
          assert.deepEqual(tok.encode(c.prompt_text), c.prompt_ids, `tokenizer on ${JSON.stringify(c.prompt_text)}`);
          const T = c.prompt_ids.length;
          const d = await values(forward(params, ids(c.prompt_ids), config));
          // The same forward jitted: bit-identical on cpu, within the reference tolerance on webgpu.
          const jitted = jit(forward, { static: [2] });
          const dj = await values(jitted(params, ids(c.prompt_ids), config));
          jitted.clear();
          if (backend === "cpu") assert.deepEqual(dj, d, "jitted forward differs from eager");
          for (const [what, logits] of [["eager", d], ["jitted", dj]] as const) {
            const err = await maxAbsDiff(logits.slice((T - 1) * V), new Float32Array(c.last_logits_full));
            assert.ok(err <= tol, `${what} last-position logits: max |diff| ${err} > ${tol}`);
            const argmax = Array.from({ length: T }, (_, t): number => argmaxRow(logits, t, V));
            assert.deepEqual(argmax, c.per_position_argmax, `${what} per-position argmax`);
          }
          const greedy = await collect(generate(params, config, c.prompt_ids, { maxTokens: 32, stop: [] }));
          assert.deepEqual(greedy, c.greedy_32);
        }
        dispose(params);
        await setBackend("cpu");
      },
    });
  }
}
