/**
 * Hugging Face Llama-style checkpoints: `config.json` into a typed
 * {@link LlamaConfig}, safetensors weights into knot's clean parameter tree
 * (see nn/llama.ts), and back. Unsupported architectures and unknown config
 * keys are refused by name; missing or mis-shaped tensors are reported by
 * name and shape.
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { fmt, sameShape } from "../core/shape.ts";
import { type LlamaConfig, type RopeScaling, validateConfig } from "../llama/config.ts";
import type { LlamaLayerParams, LlamaParams } from "../llama/llama.ts";
import { openSafetensorsDir, parseSafetensors, rawToTensor, saveSafetensors } from "./safetensors.ts";
import { writeTextAtomic } from "./atomic.ts";
import { parseJson, SIDE_FILE_LIMITS } from "./json.ts";
import { readTextLimited } from "./read_text.ts";

/** Keys of config.json that knot reads. */
const USED_KEYS = new Set([
  "architectures",
  "model_type",
  "hidden_size",
  "intermediate_size",
  "num_attention_heads",
  "num_key_value_heads",
  "num_hidden_layers",
  "head_dim",
  "rms_norm_eps",
  "rope_theta",
  "rope_parameters",
  "rope_scaling",
  "vocab_size",
  "max_position_embeddings",
  "tie_word_embeddings",
  "bos_token_id",
  "eos_token_id",
  "hidden_act",
  "attention_bias",
  "mlp_bias",
]);

/** Keys HF writes that do not change the forward pass (training, serving and bookkeeping settings). */
const IGNORED_KEYS = new Set([
  "pad_token_id",
  "initializer_range",
  "use_cache",
  "torch_dtype",
  "dtype",
  "transformers_version",
  "attention_dropout",
  "pretraining_tp",
  "_name_or_path",
  "output_attentions",
  "output_hidden_states",
  "return_dict",
  "max_length",
  "auto_map",
  "quantization_config",
  "model_name",
  "bos_token",
  "eos_token",
  "id2label",
  "label2id",
  "tokenizer_class",
]);

/** Options of {@link parseHfConfig} and {@link loadLlama}. */
export interface HfLoadOptions {
  /** Accept config keys knot does not know (they are then ignored). Default false: an Error names them. */
  allowUnknownKeys?: boolean;
}

function num(obj: Record<string, unknown>, key: string, source: string, fallback?: number): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new Error(`${source}: "${key}" must be a number, got ${JSON.stringify(obj[key])}`);
  }
  return v;
}

function ropeScalingOf(raw: unknown, source: string): RopeScaling | null {
  if (raw === null || raw === undefined) return null;
  if (typeof raw !== "object") {
    throw new Error(`${source}: "rope_scaling" must be an object or null, got ${JSON.stringify(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  if (type === "default") return null;
  if (type === "linear") return { type: "linear", factor: num(r, "factor", `${source} rope_scaling`) };
  if (type === "llama3") {
    const where = `${source} rope_scaling`;
    return {
      type: "llama3",
      factor: num(r, "factor", where),
      lowFreqFactor: num(r, "low_freq_factor", where),
      highFreqFactor: num(r, "high_freq_factor", where),
      originalMaxPositionEmbeddings: num(r, "original_max_position_embeddings", where),
    };
  }
  throw new Error(
    `${source}: rope scaling type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`,
  );
}

/** Parses a Llama `config.json` object. `source` names it in errors. */
export function parseHfConfig(raw: unknown, source = "config.json", opts: HfLoadOptions = {}): LlamaConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${source}: expected a JSON object`);
  }
  const c = raw as Record<string, unknown>;
  if (c.model_type !== "llama") {
    throw new Error(
      `${source}: model_type ${JSON.stringify(c.model_type)} is not supported (knot loads model_type "llama")`,
    );
  }
  const arch = c.architectures;
  if (arch !== undefined && (!Array.isArray(arch) || !arch.includes("LlamaForCausalLM"))) {
    throw new Error(
      `${source}: architectures ${JSON.stringify(arch)} is not supported (expected ["LlamaForCausalLM"])`,
    );
  }
  if (!opts.allowUnknownKeys) {
    const unknown = Object.keys(c).filter((k) => !USED_KEYS.has(k) && !IGNORED_KEYS.has(k));
    if (unknown.length) {
      throw new Error(
        `${source}: unknown config keys ${
          unknown.map((k) => `"${k}"`).join(", ")
        } (pass allowUnknownKeys to ignore them)`,
      );
    }
  }
  if ((c.hidden_act ?? "silu") !== "silu") {
    throw new Error(`${source}: hidden_act ${JSON.stringify(c.hidden_act)} is not supported (expected "silu")`);
  }
  if (c.attention_bias === true || c.mlp_bias === true) {
    throw new Error(`${source}: attention_bias/mlp_bias are not supported`);
  }
  const hidden = num(c, "hidden_size", source);
  const heads = num(c, "num_attention_heads", source);
  const ropeParams = (c.rope_parameters ?? null) as Record<string, unknown> | null;
  const config: LlamaConfig = {
    vocabSize: num(c, "vocab_size", source),
    hiddenSize: hidden,
    intermediateSize: num(c, "intermediate_size", source),
    numLayers: num(c, "num_hidden_layers", source),
    numHeads: heads,
    numKvHeads: num(c, "num_key_value_heads", source, heads),
    headDim: num(c, "head_dim", source, hidden / heads),
    rmsNormEps: num(c, "rms_norm_eps", source, 1e-6),
    ropeTheta: ropeParams
      ? num(ropeParams, "rope_theta", `${source} rope_parameters`, 10000)
      : num(c, "rope_theta", source, 10000),
    ropeScaling: ropeScalingOf(ropeParams ?? c.rope_scaling, source),
    maxPositionEmbeddings: num(c, "max_position_embeddings", source, 2048),
    tieWordEmbeddings: (c.tie_word_embeddings ?? false) as boolean,
    bosTokenId: (c.bos_token_id ?? null) as number | null,
    eosTokenId: (c.eos_token_id ?? null) as number | number[] | null,
  };
  try {
    return validateConfig(config, source);
  } catch (e) {
    // validateConfig names LlamaConfig fields; name the config.json keys instead.
    const msg = (e as Error).message, head = `${source}: `;
    const rest = msg.startsWith(head) ? msg.slice(head.length) : msg;
    throw new Error(head + rest.replace(/\b[a-z][A-Za-z]+\b/g, (w) => Object.hasOwn(HF_KEY_OF, w) ? HF_KEY_OF[w] : w));
  }
}

/** LlamaConfig field → config.json key, for error messages. */
const HF_KEY_OF: Record<string, string> = {
  vocabSize: "vocab_size",
  hiddenSize: "hidden_size",
  intermediateSize: "intermediate_size",
  numLayers: "num_hidden_layers",
  numHeads: "num_attention_heads",
  numKvHeads: "num_key_value_heads",
  headDim: "head_dim",
  maxPositionEmbeddings: "max_position_embeddings",
  rmsNormEps: "rms_norm_eps",
  ropeTheta: "rope_theta",
  ropeScaling: "rope_scaling",
  lowFreqFactor: "low_freq_factor",
  highFreqFactor: "high_freq_factor",
  originalMaxPositionEmbeddings: "original_max_position_embeddings",
  tieWordEmbeddings: "tie_word_embeddings",
  bosTokenId: "bos_token_id",
  eosTokenId: "eos_token_id",
};

/** The config as a Hugging Face config.json object. */
export function toHfConfig(c: LlamaConfig): Record<string, unknown> {
  const rope = c.ropeScaling === null
    ? null
    : c.ropeScaling.type === "linear"
    ? { rope_type: "linear", factor: c.ropeScaling.factor }
    : {
      rope_type: "llama3",
      factor: c.ropeScaling.factor,
      low_freq_factor: c.ropeScaling.lowFreqFactor,
      high_freq_factor: c.ropeScaling.highFreqFactor,
      original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings,
    };
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    num_hidden_layers: c.numLayers,
    head_dim: c.headDim,
    hidden_act: "silu",
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: rope,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxPositionEmbeddings,
    tie_word_embeddings: c.tieWordEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    torch_dtype: "float32",
  };
}

/** HF tensor name → path in knot's tree, with the expected shape, for every tensor of a model. */
export function hfTensorMap(c: LlamaConfig): { hf: string; path: string; shape: number[] }[] {
  const d = c.hiddenSize, hd = c.headDim, f = c.intermediateSize;
  const out = [{ hf: "model.embed_tokens.weight", path: "embed.weight", shape: [c.vocabSize, d] }];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`, q = `layers.${i}`;
    out.push(
      { hf: `${p}.input_layernorm.weight`, path: `${q}.attnNorm.weight`, shape: [d] },
      { hf: `${p}.self_attn.q_proj.weight`, path: `${q}.attn.q.weight`, shape: [c.numHeads * hd, d] },
      { hf: `${p}.self_attn.k_proj.weight`, path: `${q}.attn.k.weight`, shape: [c.numKvHeads * hd, d] },
      { hf: `${p}.self_attn.v_proj.weight`, path: `${q}.attn.v.weight`, shape: [c.numKvHeads * hd, d] },
      { hf: `${p}.self_attn.o_proj.weight`, path: `${q}.attn.o.weight`, shape: [d, c.numHeads * hd] },
      { hf: `${p}.post_attention_layernorm.weight`, path: `${q}.mlpNorm.weight`, shape: [d] },
      { hf: `${p}.mlp.gate_proj.weight`, path: `${q}.mlp.gate.weight`, shape: [f, d] },
      { hf: `${p}.mlp.up_proj.weight`, path: `${q}.mlp.up.weight`, shape: [f, d] },
      { hf: `${p}.mlp.down_proj.weight`, path: `${q}.mlp.down.weight`, shape: [d, f] },
    );
  }
  out.push({ hf: "model.norm.weight", path: "norm.weight", shape: [d] });
  if (!c.tieWordEmbeddings) out.push({ hf: "lm_head.weight", path: "lmHead.weight", shape: [c.vocabSize, d] });
  return out;
}

/** Builds the nested tree from path → tensor. */
function assemble(c: LlamaConfig, byPath: Map<string, Tensor>): LlamaParams {
  const w = (path: string) => ({ weight: byPath.get(path)! });
  const layers: LlamaLayerParams[] = Array.from({ length: c.numLayers }, (_, i) => ({
    attnNorm: w(`layers.${i}.attnNorm.weight`),
    attn: {
      q: w(`layers.${i}.attn.q.weight`),
      k: w(`layers.${i}.attn.k.weight`),
      v: w(`layers.${i}.attn.v.weight`),
      o: w(`layers.${i}.attn.o.weight`),
    },
    mlpNorm: w(`layers.${i}.mlpNorm.weight`),
    mlp: {
      gate: w(`layers.${i}.mlp.gate.weight`),
      up: w(`layers.${i}.mlp.up.weight`),
      down: w(`layers.${i}.mlp.down.weight`),
    },
  }));
  const params: LlamaParams = { embed: w("embed.weight"), layers, norm: w("norm.weight") };
  if (!c.tieWordEmbeddings) params.lmHead = w("lmHead.weight");
  return params;
}

const FLOAT_DTYPES = new Set(["F32", "F16", "BF16", "F64"]);

/** Tensors HF checkpoints may carry that the forward does not need. */
const SKIPPABLE = /(^|\.)rotary_emb\.inv_freq$|^lm_head\.weight$/;

/** A loaded model: its config and parameter tree. */
export interface LoadedLlama {
  /** The model's configuration. */
  config: LlamaConfig;
  /** The parameter tree. */
  params: LlamaParams;
}

/**
 * Loads a Hugging Face Llama directory (`config.json` and `model.safetensors`
 * or a sharded `model.safetensors.index.json`), one tensor at a time.
 */
export async function loadLlama(dir: string, opts: HfLoadOptions = {}): Promise<LoadedLlama> {
  const configPath = `${dir}/config.json`;
  let text: string;
  try {
    text = await readTextLimited(configPath, SIDE_FILE_LIMITS.maxChars, (m) => new Error(m));
  } catch (e) {
    throw new Error(`loadLlama: cannot read ${configPath}: ${(e as Error).message}`);
  }
  const raw = parseJson(text, SIDE_FILE_LIMITS, (m) => new Error(`${configPath}: ${m}`));
  const config = parseHfConfig(raw, configPath, opts);
  const reader = await openSafetensorsDir(dir);
  try {
    const expected = hfTensorMap(config);
    const problems = checkpointProblems(expected, reader);
    if (problems.length) {
      throw new Error(`loadLlama: ${reader.source} does not match ${configPath}: ${problems.join("; ")}`);
    }
    const byPath = new Map<string, Tensor>();
    try {
      for (const e of expected) byPath.set(e.path, await reader.tensor(e.hf));
    } catch (e) {
      for (const t of byPath.values()) t.dispose();
      throw e;
    }
    return { config, params: assemble(config, byPath) };
  } finally {
    reader.close();
  }
}

/**
 * Saves a model as a Hugging Face directory (`config.json` +
 * `model.safetensors`), each written to a temporary file and renamed.
 */
export async function saveLlama(dir: string, params: LlamaParams, config: LlamaConfig): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tensors: Record<string, Tensor> = {};
  for (const e of hfTensorMap(config)) {
    const t = e.path.split(".").reduce<unknown>((node, k) => (node as Record<string, unknown>)?.[k], params) as
      | Tensor
      | undefined;
    if (!t) throw new Error(`saveLlama: params have no leaf at "${e.path}" (needed for ${e.hf})`);
    if (!sameShape(t.shape, e.shape)) {
      throw new Error(`saveLlama: "${e.path}" has shape ${fmt(t.shape)}, config expects ${fmt(e.shape)}`);
    }
    tensors[e.hf] = t;
  }
  await saveSafetensors(`${dir}/model.safetensors`, tensors, { format: "pt" });
  await writeTextAtomic(`${dir}/config.json`, JSON.stringify(toHfConfig(config), null, 2) + "\n");
}

// ---------------------------------------------------------------- Llama from bytes (browser-safe)

/** What {@link checkpointProblems} needs of a checkpoint: names, and each tensor's shape and dtype. */
interface CheckpointView {
  readonly names: readonly string[];
  has(name: string): boolean;
  info(name: string): { shape: readonly number[]; dtype: string };
}

/**
 * Every way a checkpoint fails to match the tensors a config expects: missing,
 * mis-shaped or non-float tensors, and unexpected extra ones (shared by
 * {@link loadLlama} and {@link llamaFromBytes}).
 */
function checkpointProblems(expected: { hf: string; shape: number[] }[], reader: CheckpointView): string[] {
  const problems: string[] = [];
  for (const e of expected) {
    if (!reader.has(e.hf)) problems.push(`missing ${e.hf} (expected ${fmt(e.shape)})`);
    else if (!sameShape(reader.info(e.hf).shape, e.shape)) {
      problems.push(`${e.hf} has shape ${fmt(reader.info(e.hf).shape)}, expected ${fmt(e.shape)}`);
    } else if (!FLOAT_DTYPES.has(reader.info(e.hf).dtype)) {
      problems.push(`${e.hf} is ${reader.info(e.hf).dtype}, expected a float type (F32, F16, BF16, F64)`);
    }
  }
  const known = new Set(expected.map((e) => e.hf));
  const extra = reader.names.filter((n) => !known.has(n) && !SKIPPABLE.test(n));
  if (extra.length) {
    problems.push(
      `unexpected tensors ${extra.slice(0, 5).join(", ")}${extra.length > 5 ? ` (+${extra.length - 5} more)` : ""}`,
    );
  }
  return problems;
}

/**
 * Builds a Llama from bytes in memory, with no file system (for browsers: the
 * bytes of a `fetch` or a `File`): `configJson` is the parsed `config.json`
 * object (or its text), `safetensors` the whole `model.safetensors` file.
 * The same config parsing, name/shape mapping and checks as {@link loadLlama};
 * errors name `source` (default "model.safetensors"). One file only: a
 * sharded checkpoint needs {@link loadLlama}. Tensors are converted (F16/BF16
 * → float32) and uploaded to the current backend.
 * @example
 * ```ts ignore
 * const [cfg, st] = await Promise.all([fetch("config.json"), fetch("model.safetensors")]);
 * const { config, params } = llamaFromBytes(await cfg.json(), new Uint8Array(await st.arrayBuffer()));
 * ```
 */
export function llamaFromBytes(
  configJson: unknown,
  safetensors: Uint8Array,
  source = "model.safetensors",
  opts: HfLoadOptions = {},
): LoadedLlama {
  let raw = configJson;
  if (typeof raw === "string") raw = parseJson(raw, SIDE_FILE_LIMITS, (m) => new Error(`config.json: ${m}`));
  const config = parseHfConfig(raw, "config.json", opts);
  const { tensors } = parseSafetensors(safetensors, source);
  const expected = hfTensorMap(config);
  const problems = checkpointProblems(expected, {
    names: Object.keys(tensors),
    has: (n) => Object.hasOwn(tensors, n),
    info: (n) => tensors[n],
  });
  if (problems.length) throw new Error(`llamaFromBytes: ${source} does not match config.json: ${problems.join("; ")}`);
  const byPath = new Map<string, Tensor>();
  try {
    for (const e of expected) byPath.set(e.path, rawToTensor(tensors[e.hf], e.hf, source));
  } catch (e) {
    for (const t of byPath.values()) t.dispose();
    throw e;
  }
  return { config, params: assemble(config, byPath) };
}
