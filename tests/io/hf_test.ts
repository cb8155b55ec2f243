// Hugging Face Llama checkpoints: config.json parsing and refusals, and the
// safetensors loader's checks (missing, mis-shaped, extra tensors).
import assert from "node:assert/strict";
import { dispose, type Tensor, tensor, tree, zeros } from "../../mod.ts";
import { key, normal } from "../../core/random.ts";
import { type LlamaConfig, randomLlama } from "../../llama/mod.ts";
import { loadLlama, loadSafetensors, parseHfConfig, saveLlama, saveSafetensors, toHfConfig } from "../../io/mod.ts";

const SRC = "models/demo/config.json";

/** A minimal valid Llama config.json (as HF writes it, with a few ignored keys). */
function base(): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 172,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    num_hidden_layers: 5,
    vocab_size: 512,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: null,
    torch_dtype: "float32",
    transformers_version: "4.40.0",
  };
}

function parse(overrides: Record<string, unknown>, drop: string[] = []): LlamaConfig {
  const raw = { ...base(), ...overrides };
  for (const k of drop) delete raw[k];
  return parseHfConfig(raw, SRC);
}

/** Asserts `fn` throws an Error whose message contains every one of `parts`. */
function refuses(fn: () => unknown, ...parts: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `expected an Error, got ${e}`);
    for (const p of parts) {
      assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    }
    return true;
  });
}

async function refusesAsync(fn: () => Promise<unknown>, ...parts: string[]) {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `expected an Error, got ${e}`);
    for (const p of parts) {
      assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    }
    return true;
  });
}

// ---------------------------------------------------------------- parsing

Deno.test("parseHfConfig: a full config maps field by field", () => {
  const c = parse({ head_dim: 8 });
  assert.deepEqual(c, {
    vocabSize: 512,
    hiddenSize: 64,
    intermediateSize: 172,
    numLayers: 5,
    numHeads: 8,
    numKvHeads: 4,
    headDim: 8,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositionEmbeddings: 512,
    tieWordEmbeddings: true,
    bosTokenId: 1,
    eosTokenId: 2,
  });
  assert.deepEqual(parse({ vocab_size: 128256, eos_token_id: [128001, 128009] }).eosTokenId, [128001, 128009]);
});

Deno.test("parseHfConfig: defaults for head_dim, num_key_value_heads and optional keys", () => {
  const c = parse({}, [
    "num_key_value_heads",
    "rope_theta",
    "rms_norm_eps",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
  ]);
  assert.equal(c.headDim, 64 / 8, "head_dim defaults to hidden_size / num_attention_heads");
  assert.equal(c.numKvHeads, 8, "num_key_value_heads defaults to num_attention_heads (no GQA)");
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(c.tieWordEmbeddings, false, "HF's LlamaConfig default is untied");
  assert.equal(c.bosTokenId, null);
  assert.equal(c.eosTokenId, null);
  assert.equal(parse({ head_dim: null }).headDim, 8, "head_dim: null means the default");
  assert.equal(parse({ head_dim: 16 }).headDim, 16, "an explicit head_dim wins (q width need not equal hidden_size)");
  assert.equal(parse({ architectures: undefined }, ["architectures"]).numLayers, 5, "architectures may be absent");
});

Deno.test("parseHfConfig: rope_scaling llama3 / linear / default / null / absent", () => {
  const llama3 = {
    rope_type: "llama3",
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };
  assert.deepEqual(parse({ rope_scaling: llama3, rope_theta: 500000 }).ropeScaling, {
    type: "llama3",
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
  assert.equal(parse({ rope_scaling: llama3, rope_theta: 500000 }).ropeTheta, 500000);
  assert.deepEqual(parse({ rope_scaling: { type: "linear", factor: 2 } }).ropeScaling, { type: "linear", factor: 2 });
  assert.deepEqual(parse({ rope_scaling: { rope_type: "linear", factor: 4 } }).ropeScaling, {
    type: "linear",
    factor: 4,
  });
  assert.equal(parse({ rope_scaling: { rope_type: "default" } }).ropeScaling, null);
  assert.equal(parse({ rope_scaling: null }).ropeScaling, null);
  assert.equal(parse({}, ["rope_scaling"]).ropeScaling, null);
  refuses(() => parse({ rope_scaling: { rope_type: "llama3", factor: 8 } }), SRC, "low_freq_factor");
  refuses(() => parse({ rope_scaling: { rope_type: "linear", factor: "2" } }), SRC, "factor", '"2"');
});

Deno.test("parseHfConfig: the rope_parameters form (transformers ≥ 4.56)", () => {
  const c = parse({ rope_parameters: { rope_type: "default", rope_theta: 123456 } }, ["rope_theta"]);
  assert.equal(c.ropeTheta, 123456);
  assert.equal(c.ropeScaling, null);
  const l3 = parse({
    rope_parameters: {
      rope_type: "llama3",
      rope_theta: 500000,
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
  }, ["rope_theta"]);
  assert.equal(l3.ropeTheta, 500000);
  assert.deepEqual(l3.ropeScaling, {
    type: "llama3",
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
  assert.equal(parse({ rope_parameters: { rope_type: "default" } }, ["rope_theta"]).ropeTheta, 10000);
  refuses(() => parse({ rope_parameters: { rope_type: "yarn", rope_theta: 10000, factor: 4 } }), SRC, '"yarn"');
});

Deno.test("toHfConfig → parseHfConfig round-trips every rope scaling", () => {
  const scalings: LlamaConfig["ropeScaling"][] = [
    null,
    { type: "linear", factor: 2 },
    { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
  ];
  for (const ropeScaling of scalings) {
    for (const tie of [true, false]) {
      const c = { ...parse({}), ropeScaling, tieWordEmbeddings: tie };
      assert.deepEqual(parseHfConfig(JSON.parse(JSON.stringify(toHfConfig(c))), SRC), c);
    }
  }
});

Deno.test("parseHfConfig refuses unsupported models, naming the file and the key or value", () => {
  refuses(() => parse({ model_type: "gpt2" }), SRC, "model_type", '"gpt2"');
  refuses(() => parse({}, ["model_type"]), SRC, "model_type");
  refuses(() => parse({ architectures: ["MistralForCausalLM"] }), SRC, "architectures", "MistralForCausalLM");
  refuses(() => parse({ sliding_window: 4096 }), SRC, '"sliding_window"', "allowUnknownKeys");
  refuses(() => parse({ hidden_act: "gelu" }), SRC, "hidden_act", '"gelu"');
  refuses(() => parse({ attention_bias: true }), SRC, "attention_bias");
  refuses(() => parse({ mlp_bias: true }), SRC, "mlp_bias");
  refuses(() => parse({ rope_scaling: { rope_type: "yarn", factor: 4 } }), SRC, "rope", '"yarn"');
  refuses(() => parse({ rope_scaling: { type: "dynamic", factor: 2 } }), SRC, '"dynamic"');
  refuses(() => parse({ rope_scaling: "llama3" }), SRC, "rope_scaling");
  refuses(() => parse({ hidden_size: "64" }), SRC, "hidden_size", '"64"');
  refuses(() => parse({}, ["hidden_size"]), SRC, "hidden_size");
  refuses(() => parse({ vocab_size: null }), SRC, "vocab_size");
  refuses(
    () => parse({ num_attention_heads: 6, head_dim: 8 }),
    SRC,
    "num_attention_heads",
    "6",
    "num_key_value_heads",
    "4",
  );
  refuses(() => parse({ num_hidden_layers: 0 }), SRC, "0");
  refuses(() => parseHfConfig([1, 2], SRC), SRC, "JSON object");
  refuses(() => parseHfConfig(null, SRC), SRC);
  // Known-harmless and explicitly allowed keys pass.
  assert.equal(parse({ attention_bias: false, mlp_bias: false, hidden_act: "silu", use_cache: true }).numLayers, 5);
  assert.equal(parseHfConfig({ ...base(), sliding_window: 4096 }, SRC, { allowUnknownKeys: true }).numLayers, 5);
});

// ---------------------------------------------------------------- loading

/** A small model saved to a fresh temp dir; returns the dir and the saved tensors by HF name. */
async function savedTiny(tied = true): Promise<{ dir: string; config: LlamaConfig; st: string }> {
  const { config, params } = randomLlama({
    seed: 31,
    vocabSize: 32,
    hiddenSize: 16,
    numHeads: 2,
    numKvHeads: 1,
    intermediateSize: 24,
    numLayers: 2,
    tieWordEmbeddings: tied,
  });
  const dir = await Deno.makeTempDir({ prefix: "knot_hf_" });
  await saveLlama(dir, params, config);
  dispose(params);
  return { dir, config, st: `${dir}/model.safetensors` };
}

/** Rewrites a safetensors file through `edit`. */
async function rewrite(path: string, edit: (t: Record<string, Tensor>) => void) {
  const tensors = await loadSafetensors(path);
  edit(tensors);
  await saveSafetensors(path, tensors, { format: "pt" });
  dispose(Object.values(tensors));
}

async function withTiny(fn: (dir: string, config: LlamaConfig, st: string) => Promise<void>, tied = true) {
  const { dir, config, st } = await savedTiny(tied);
  try {
    await fn(dir, config, st);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadLlama: a missing tensor is named with its expected shape", async () => {
  await withTiny(async (dir, _c, st) => {
    await rewrite(st, (t) => delete t["model.layers.1.mlp.up_proj.weight"]);
    await refusesAsync(() => loadLlama(dir), st, "missing model.layers.1.mlp.up_proj.weight", "[24, 16]");
  });
  await withTiny(async (dir, _c, st) => {
    await rewrite(st, (t) => delete t["lm_head.weight"]);
    await refusesAsync(() => loadLlama(dir), "missing lm_head.weight", "[32, 16]");
  }, false);
});

Deno.test("loadLlama: a mis-shaped tensor is named with both shapes", async () => {
  await withTiny(async (dir, _c, st) => {
    await rewrite(st, (t) => {
      t["model.layers.0.self_attn.k_proj.weight"] = zeros([16, 16]);
    });
    await refusesAsync(
      () => loadLlama(dir),
      st,
      "model.layers.0.self_attn.k_proj.weight",
      "[16, 16]",
      "expected [8, 16]",
    );
  });
});

Deno.test("loadLlama: unexpected extra tensors are refused by name; rotary_emb.inv_freq is ignored", async () => {
  await withTiny(async (dir, _c, st) => {
    await rewrite(st, (t) => {
      t["model.layers.0.self_attn.q_proj.bias"] = zeros([16]);
    });
    await refusesAsync(() => loadLlama(dir), st, "unexpected", "model.layers.0.self_attn.q_proj.bias");
  });
  await withTiny(async (dir, config, st) => {
    const before = await loadLlama(dir);
    await rewrite(st, (t) => {
      t["model.layers.0.self_attn.rotary_emb.inv_freq"] = normal(key(1), [4]);
      t["model.layers.1.self_attn.rotary_emb.inv_freq"] = normal(key(2), [4]);
    });
    const after = await loadLlama(dir);
    assert.deepEqual(after.config, config);
    assert.deepEqual(tree.paths(after.params), tree.paths(before.params), "inv_freq must not enter the tree");
    dispose([before.params, after.params]);
  });
});

Deno.test("loadLlama: a tied model that still stores lm_head.weight (as stories260K does) loads", async () => {
  await withTiny(async (dir, _c, st) => {
    await rewrite(st, (t) => {
      t["lm_head.weight"] = t["model.embed_tokens.weight"];
    });
    const { params } = await loadLlama(dir);
    assert.equal(params.lmHead, undefined, "tied: the embedding is the head");
    dispose(params);
  });
});

Deno.test("loadLlama: an integer weight is refused by name", async () => {
  await withTiny(async (dir, _c, st) => {
    await rewrite(st, (t) => {
      t["model.norm.weight"] = tensor(new Int32Array(16), [16], "int32");
    });
    await refusesAsync(() => loadLlama(dir), "model.norm.weight", "is I32, expected a float type");
  });
});

Deno.test("loadLlama: missing config.json, invalid config.json, missing weights", async () => {
  await withTiny(async (dir) => {
    await Deno.remove(`${dir}/model.safetensors`);
    await refusesAsync(() => loadLlama(dir), dir, "model.safetensors");
    await Deno.writeTextFile(`${dir}/config.json`, "{ not json");
    await refusesAsync(() => loadLlama(dir), `${dir}/config.json`, "invalid JSON");
    await Deno.remove(`${dir}/config.json`);
    await refusesAsync(() => loadLlama(dir), `${dir}/config.json`);
  });
  await refusesAsync(() => loadLlama("/nonexistent/knot-model"), "/nonexistent/knot-model/config.json");
});

Deno.test("loadLlama: a config.json refusal names the file's path", async () => {
  await withTiny(async (dir) => {
    const raw = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...raw, model_type: "mistral" }));
    await refusesAsync(() => loadLlama(dir), `${dir}/config.json`, '"mistral"');
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...raw, num_hidden_layers: 3 }));
    await refusesAsync(() => loadLlama(dir), "missing model.layers.2.input_layernorm.weight");
  });
});
