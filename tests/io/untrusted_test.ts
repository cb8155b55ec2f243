// Regression tests for issue 17 (untrusted files), one test per numbered
// finding: each failed on main a0e4f98 and passes now. The seeded fuzz suite
// over every loader is tests/io/untrusted_fuzz_test.ts.
import assert from "node:assert/strict";
import {
  add,
  arange,
  broadcastTo,
  cast,
  dispose,
  eye,
  liveBuffers,
  matmul,
  pad,
  random,
  scope,
  setAllocationLimit,
  tensor,
  tree,
  zeros,
} from "../../mod.ts";
import { key, uniform } from "../../core/random.ts";
import type { DType } from "../../mod.ts";
import { randomLlama } from "../../llama/mod.ts";
import { exportPeftLora, importPeftLora, loadAdapter, saveAdapter } from "../../io/adapter.ts";
import { loadLlama, parseHfConfig, saveLlama } from "../../io/hf.ts";
import { loadSafetensors, parseSafetensors, saveSafetensors } from "../../io/safetensors.ts";
import { Tokenizer } from "../../io/tokenizer.ts";
import { preset } from "../../peft/methods/presets.ts";
import type { Tree } from "../../core/tree.ts";
import type { PlanTree } from "../../peft/plan.ts";

/** Asserts `fn` throws an Error (not a TypeError/RangeError) whose message contains every one of `parts`. */
function refuses(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => checkError(e, parts));
}

async function refusesAsync(fn: () => Promise<unknown>, ...parts: string[]): Promise<void> {
  await assert.rejects(fn, (e: unknown) => checkError(e, parts));
}

function checkError(e: unknown, parts: string[]): true {
  assert.ok(e instanceof Error, `expected an Error, got ${e}`);
  assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), `expected our Error, got ${e}`);
  for (const p of parts) {
    assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
  }
  return true;
}

/**
 * Runs `fn` and asserts it took under `ms` milliseconds: the budget for a load (main took seconds to
 * minutes, or never finished, on these inputs).
 */
async function within<T>(ms: number, what: string, fn: () => T | Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await fn();
  const dt = performance.now() - t0;
  assert.ok(dt < ms, `${what} took ${dt.toFixed(0)} ms (limit ${ms} ms)`);
  return out;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "knot_untrusted_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const { config: CONFIG, params: PARAMS } = randomLlama({ seed: 3, numLayers: 2, hiddenSize: 16, numHeads: 2 });
const BASE = PARAMS as unknown as Tree;

/** Releases what a loaded adapter holds, but not the base model it was loaded onto. */
function disposeAdapter(a: { trainable: PlanTree; frozen: PlanTree }): void {
  dispose([a.trainable.sites, a.trainable.tied, a.trainable.base, a.frozen.sites, a.frozen.tied]);
}

/** A minimal valid Llama config.json. */
function hfConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
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
    ...overrides,
  };
}

// ---------------------------------------------------------------- finding 1: configs

Deno.test("finding 1: config sizes beyond any model, NaN-making rope scaling and eps are Errors before anything is built", async () => {
  const SRC = "m/config.json";
  refuses(() => parseHfConfig(hfConfig({ num_hidden_layers: 1e308 }), SRC), SRC, "num_hidden_layers", "1e+308");
  refuses(() => parseHfConfig(hfConfig({ num_hidden_layers: 2 ** 31 }), SRC), SRC, "num_hidden_layers");
  refuses(() => parseHfConfig(hfConfig({ vocab_size: 2 ** 40 }), SRC), SRC, "vocab_size");
  for (const factor of [0, -2, 0.5]) {
    refuses(
      () => parseHfConfig(hfConfig({ rope_scaling: { type: "linear", factor } }), SRC),
      SRC,
      "rope_scaling",
      "factor",
    );
  }
  const llama3 = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4 };
  refuses(
    () =>
      parseHfConfig(hfConfig({ rope_scaling: { ...llama3, factor: 0, original_max_position_embeddings: 8192 } }), SRC),
    SRC,
    "factor",
  );
  refuses(
    () =>
      parseHfConfig(
        hfConfig({ rope_scaling: { ...llama3, high_freq_factor: 1, original_max_position_embeddings: 8192 } }),
        SRC,
      ),
    SRC,
    "high_freq_factor",
  );
  refuses(() => parseHfConfig(hfConfig({ rms_norm_eps: 1e300 }), SRC), SRC, "rms_norm_eps");
  refuses(() => parseHfConfig(hfConfig({ rms_norm_eps: 0 }), SRC), SRC, "rms_norm_eps");
  refuses(() => parseHfConfig(hfConfig({ eos_token_id: [2, 1e9] }), SRC), SRC, "eos_token_id");
  refuses(() => parseHfConfig(hfConfig({ bos_token_id: "1" }), SRC), SRC, "bos_token_id");
  // The whole load: a real checkpoint with a config claiming 2^31 layers fails at once, naming the key.
  await withTempDir(async (dir) => {
    await saveLlama(dir, PARAMS, CONFIG);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...cfg, num_hidden_layers: 2 ** 31 }));
    await within(2000, "loadLlama", () => refusesAsync(() => loadLlama(dir), "config.json", "num_hidden_layers"));
  });
});

// ---------------------------------------------------------------- finding 2: prototype pollution

Deno.test("finding 2: an adapter leaf at constructor.prototype.X is refused and Object.prototype stays clean", async () => {
  await withTempDir(async (dir) => {
    const plan = preset("lora", { rank: 2 });
    const { trainable, frozen } = plan.init(BASE, key(1));
    await saveAdapter(dir, plan, trainable, frozen);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter.json`));
    const leaf = json.leaves[0];
    const evil = { ...leaf, path: "constructor.prototype.allowUnknownKeys" };
    json.leaves.push(evil);
    const name = `sites.${evil.path}`;
    json.stored.push(name);
    await Deno.writeTextFile(`${dir}/adapter.json`, JSON.stringify(json));
    // The library's own writer produces the matching tensor.
    const stored = await loadSafetensors(`${dir}/adapter.safetensors`);
    const extra = zeros(leaf.shape);
    await saveSafetensors(`${dir}/adapter.safetensors`, { ...stored, [name]: extra });
    dispose([stored, extra]);
    const live = liveBuffers();
    try {
      await refusesAsync(() => loadAdapter(dir, BASE), "adapter.json", "constructor.prototype.allowUnknownKeys");
      assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, "allowUnknownKeys"), false);
      assert.equal(liveBuffers(), live, "nothing leaked");
    } finally {
      delete (Object.prototype as Record<string, unknown>).allowUnknownKeys;
    }
  });
  // core/tree never walks into prototype keys, whether in a path or in a tree parsed from JSON.
  const t = { a: { weight: tensor([1]) } };
  refuses(() => tree.at(t, "constructor.prototype"), "constructor");
  refuses(() => tree.set(t, "a.__proto__", null), "__proto__");
  const parsed = JSON.parse('{"__proto__": {"polluted": 1}, "w": null}');
  refuses(() => tree.map(parsed, (x) => x), "__proto__");
  refuses(() => tree.combine(parsed, parsed), "__proto__");
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  dispose(t);
});

// ---------------------------------------------------------------- finding 3: side files

Deno.test("finding 3: malformed adapter.json and PEFT configs are Errors naming the file, never silent", async () => {
  await withTempDir(async (dir) => {
    const plan = preset("lora", { rank: 2 });
    const { trainable, frozen } = plan.init(BASE, key(1));
    await saveAdapter(dir, plan, trainable, frozen);
    const original = await Deno.readTextFile(`${dir}/adapter.json`);
    const edit = async (f: (j: Record<string, unknown> & { leaves: Record<string, unknown>[] }) => void) => {
      const j = JSON.parse(original);
      f(j);
      await Deno.writeTextFile(`${dir}/adapter.json`, JSON.stringify(j));
    };
    const live = liveBuffers();
    // Every part renamed: main loaded this as a no-op adapter, bit-identical to the base.
    await edit((j) => j.leaves.forEach((l) => (l.part = "Z")));
    await refusesAsync(() => loadAdapter(dir, BASE), "adapter.json", "part");
    await edit((j) => (j.leaves[0].site = "layers.0.attn.nowhere"));
    await refusesAsync(() => loadAdapter(dir, BASE), "adapter.json", "layers.0.attn.nowhere");
    await edit((j) => (j.leaves[1].shape = [2, 99]));
    await refusesAsync(() => loadAdapter(dir, BASE), "adapter.json", "shape");
    // Shapes main met with a TypeError naming no file.
    for (
      const f of [(j: Record<string, unknown>) => (j.leaves = 5), (j: Record<string, unknown>) => (j.sites = [null])]
    ) {
      await edit(f as (j: Record<string, unknown>) => void);
      await refusesAsync(() => loadAdapter(dir, BASE), "adapter.json");
    }
    await Deno.writeTextFile(`${dir}/adapter.json`, original);
    disposeAdapter(await loadAdapter(dir, BASE));
    assert.equal(liveBuffers(), live);
  });
  await withTempDir(async (dir) => {
    const plan = preset("lora", { rank: 2 });
    const { trainable, frozen } = plan.init(BASE, key(1));
    await exportPeftLora(dir, plan, trainable, frozen);
    const original = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    const live = liveBuffers();
    for (
      const [change, word] of [
        [{ lora_alpha: "x" }, "lora_alpha"],
        [{ lora_alpha: 0 }, "lora_alpha"],
        [{ lora_alpha: -4 }, "lora_alpha"],
        [{ r: "2" }, '"r"'],
        [{ alpha_pattern: { q_proj: "x" } }, "alpha_pattern"],
        [{ rank_pattern: { q_proj: 2.5 } }, "rank_pattern"],
      ] as const
    ) {
      await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify({ ...original, ...change }));
      await refusesAsync(() => importPeftLora(dir, BASE), "adapter_config.json", word);
    }
    assert.equal(liveBuffers(), live);
  });
});

// ---------------------------------------------------------------- finding 4: header budgets

function safetensorsWithHeader(json: string): Uint8Array {
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  return out;
}

Deno.test("finding 4: a header of 150,000 zero-size tensors or 1 MB of nesting is refused in one linear pass", async () => {
  const entries = Array.from({ length: 150_000 }, (_, i) => `"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
  const many = safetensorsWithHeader(`{${entries.join(",")}}`);
  await within(
    2000,
    "150k zero-size tensors",
    () => refuses(() => parseSafetensors(many, "many.st"), "many.st", "tensors"),
  );
  const deep = safetensorsWithHeader("[".repeat(1 << 20));
  await within(2000, "1 MB of [", () => refuses(() => parseSafetensors(deep, "deep.st"), "deep.st", "nested deeper"));
  const deepObj = safetensorsWithHeader(`{"w":${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}`);
  refuses(() => parseSafetensors(deepObj, "obj.st"), "obj.st", "nested deeper");
});

// ---------------------------------------------------------------- finding 5: tokenizers

const MINI = {
  version: "1.0",
  added_tokens: [
    { id: 0, content: "<unk>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 1, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ],
  normalizer: null,
  pre_tokenizer: null,
  post_processor: null,
  decoder: null,
  model: {
    type: "BPE",
    dropout: null,
    unk_token: "<unk>",
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: true,
    byte_fallback: false,
    vocab: { "<unk>": 0, "<s>": 1, a: 2, "!": 3, aa: 4 },
    merges: ["a a"],
  },
};

Deno.test("finding 5: tokenizer.json with an exponential pattern or a huge id is refused at load, quickly", async () => {
  const split = (pattern: string) => ({
    ...MINI,
    pre_tokenizer: { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
  });
  await within(
    500,
    "(a+)+$",
    () => refuses(() => new Tokenizer(split("(a+)+$"), {}, "t/tokenizer.json"), "t/tokenizer.json", "(a+)+$"),
  );
  refuses(() => new Tokenizer(split("(\\w|\\d)*!"), {}, "t/tokenizer.json"), "pre_tokenizer", "refused");
  // A safe Split pattern still loads and encodes the adversarial input instantly.
  const ok = new Tokenizer(split("a+|!"), {}, "t/tokenizer.json");
  await within(2000, "encode", () => ok.encode("a".repeat(28) + "!"));
  const huge = { ...MINI, added_tokens: [...MINI.added_tokens, { ...MINI.added_tokens[1], id: 1e9, content: "<x>" }] };
  await within(
    500,
    "id 1e9",
    () => refuses(() => new Tokenizer(huge, {}, "t/tokenizer.json"), "t/tokenizer.json", "added_tokens[2].id"),
  );
  const vocabId = { ...MINI, model: { ...MINI.model, vocab: { ...MINI.model.vocab, b: -1 } } };
  refuses(() => new Tokenizer(vocabId, {}, "t/tokenizer.json"), "model.vocab", '"b"');
});

// ---------------------------------------------------------------- finding 6: leaks

Deno.test("finding 6: loadAdapter and importPeftLora release every tensor they read when they throw", async () => {
  await withTempDir(async (dir) => {
    const plan = preset("lora", { rank: 2 });
    const { trainable, frozen } = plan.init(BASE, key(1));
    await saveAdapter(dir, plan, trainable, frozen);
    const stored = await loadSafetensors(`${dir}/adapter.safetensors`);
    const names = Object.keys(stored).sort();
    // The last tensor mis-shaped: main had read (and kept) every other one.
    const last = names.at(-1)!;
    const wrong = zeros([3, 3]);
    const junk = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`junk.${i}`, zeros([1])]));
    const live = liveBuffers();
    await saveSafetensors(`${dir}/adapter.safetensors`, { ...stored, [last]: wrong });
    await refusesAsync(() => loadAdapter(dir, BASE), last);
    assert.equal(liveBuffers(), live, "loadAdapter leaked after a mis-shaped tensor");
    // Tensors adapter.json does not list: refused (main loaded and leaked them).
    await saveSafetensors(`${dir}/adapter.safetensors`, { ...stored, ...junk });
    await refusesAsync(() => loadAdapter(dir, BASE), "adapter.safetensors", "junk.");
    assert.equal(liveBuffers(), live, "loadAdapter leaked unlisted tensors");
    dispose([wrong, junk]);
    await Deno.remove(`${dir}/adapter.safetensors`);
    await Deno.remove(`${dir}/adapter.json`);
    // PEFT: a lora_B of the wrong shape after valid pairs.
    await exportPeftLora(dir, plan, trainable, frozen);
    const peft = await loadSafetensors(`${dir}/adapter_model.safetensors`);
    const bNames = Object.keys(peft).filter((n) => n.includes("lora_B")).sort();
    const badB = zeros([5, 2]);
    const live2 = liveBuffers();
    await saveSafetensors(`${dir}/adapter_model.safetensors`, { ...peft, [bNames.at(-1)!]: badB });
    await refusesAsync(() => importPeftLora(dir, BASE), "adapter_model.safetensors");
    assert.equal(liveBuffers(), live2, "importPeftLora leaked");
    // Success with lora_alpha ≠ r: only the returned tree stays alive (main kept every unscaled B too).
    await saveSafetensors(`${dir}/adapter_model.safetensors`, peft);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify({ ...cfg, lora_alpha: 4 }));
    const imported = await importPeftLora(dir, BASE);
    assert.equal(liveBuffers(), live2 + tree.leaves(imported.trainable.sites).length);
    dispose([imported.trainable.sites, badB, peft, stored]);
  });
});

// ---------------------------------------------------------------- finding 7: huge shapes

const BASE64 = randomLlama({ seed: 4, numLayers: 1 }).params as unknown as Tree; // hidden 64, as stories260K

Deno.test("finding 7: huge shapes are refused before allocating, naming the op and the shape", async () => {
  const live = liveBuffers();
  const x = tensor([1, 2, 3]);
  // scope: the small operands made for the calls are released with it.
  await within(2000, "all refusals", () =>
    scope(() => {
      refuses(() => zeros([1e6, 1e6]), "zeros", "[1000000, 1000000]");
      refuses(() => eye(1e6), "eye", "[1000000, 1000000]");
      refuses(() => arange(0, 1e12), "arange", "[1000000000000]");
      refuses(() => broadcastTo(tensor([1]), [1e6, 1e6]), "broadcastTo", "[1000000, 1000000]");
      refuses(() => pad(x, [[1e10, 0]]), "pad", "[10000000003]");
      refuses(() => add(zeros([100_000, 1]), zeros([1, 100_000])), "add", "[100000, 100000]");
      refuses(() => matmul(zeros([100_000, 1]), zeros([1, 100_000])), "matmul", "[100000, 100000]");
      refuses(() => uniform(key(0), [2 ** 31]), "uniform", "[2147483648]");
      refuses(() => preset("lora", { rank: 1e7 }).init(BASE64, key(0)), "uniform", "[10000000, 64]");
      refuses(() => cast(x, "float64" as DType), "cast", "float64");
      refuses(() => random.split(key(0), 1e9), "split", "1000000000");
    }));
  // The limit is configurable, and restoring it restores the default.
  const previous = setAllocationLimit(1024);
  try {
    refuses(() => zeros([1024]), "zeros", "[1024]", "4.00 KiB");
  } finally {
    setAllocationLimit(previous);
  }
  dispose(zeros([1024]));
  dispose(x);
  assert.equal(liveBuffers(), live, "a refused op left a buffer behind");
});
