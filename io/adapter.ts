/**
 * Adapter files. knot's own format: `adapter.safetensors` (each stored leaf
 * once: a tied group is one tensor) plus `adapter.json` (the resolved plan:
 * sites, leaves, ties, initializers, preset and base model). And Hugging Face
 * PEFT LoRA adapters: any knot plan exports exactly as per-module LoRA
 * factors (`lora_alpha = r`), and PEFT LoRA files import as a `lora` plan.
 * @module
 */
import type { Tensor } from "../core/tensor.ts";
import { mul } from "../core/ops/elementwise.ts";
import { scope } from "../core/scope.ts";
import { concat } from "../core/ops/movement.ts";
import { fmt, sameShape } from "../core/shape.ts";
import * as tree from "../core/tree.ts";
import { PROTO_KEYS } from "../core/proto_keys.ts";
import type { Tree } from "../core/tree.ts";
import { initializerFrom } from "../peft/initializers.ts";
import { fromLoraFactors, type LoraFactors, toLoraFactors } from "../peft/merge.ts";
import {
  compose,
  type LeafSpec,
  type Plan,
  type PlanTree,
  type Resolved,
  shapesOf,
  storagePath,
  type Transform,
  withMeta,
} from "../peft/plan.ts";
import { writeFileAtomic, writeTextAtomic } from "./atomic.ts";
import { SafetensorsFile, saveSafetensors, serializeSafetensors } from "./safetensors.ts";
import { checkAdapterJson, type CheckedAdapterJson } from "./adapter_json.ts";
import { isJsonObject, parseJson, quote, SIDE_FILE_LIMITS } from "./json.ts";
import { readTextLimited } from "./read_text.ts";

const FORMAT = "knot-adapter";
const VERSION = 1;

/** What adapter.json records about the base model (optional, for users' bookkeeping). */
export interface BaseModelInfo {
  /** Where the base model was loaded from. */
  path?: string;
  /** A hash of its weights, if the caller computed one. */
  hash?: string;
}

/** adapter.json as written by {@link saveAdapter}. */
export interface AdapterJson {
  /** Always "knot-adapter": tells this file from other adapter.json layouts. */
  format: "knot-adapter";
  /** Layout version, checked on load. */
  version: number;
  /** The plan's metadata (preset name and options, key). */
  meta: Record<string, unknown>;
  /** The plan's transforms as described by each (for reading; the leaves below are what load uses). */
  transforms: Record<string, unknown>[];
  /** The resolved sites. */
  sites: Resolved["sites"];
  /** Every adapter leaf, with its initializer by name and arguments. */
  leaves: (Omit<LeafSpec, "init"> & { init: { name: string; args: Record<string, number> } })[];
  /** Base leaves the plan made trainable (stored in adapter.safetensors too). */
  baseTrainable: string[];
  /** Storage paths present in adapter.safetensors. */
  stored: string[];
  /** The base model this adapter was trained on. */
  base: BaseModelInfo;
}

/** A plan that reproduces a stored resolution (already checked against the base model by checkAdapterJson). */
function planFromJson(j: CheckedAdapterJson, source: string): Plan {
  const step: Transform = {
    describe: { transform: "restore", from: source },
    apply(state: Resolved): Resolved {
      for (const s of j.sites) {
        const shapes = s.fusedOf
          ? s.fusedOf.map((m) => state.baseShapes.get(`${s.path.split(".").slice(0, -1).join(".")}.${m}.weight`))
          : [state.baseShapes.get(`${s.path}.weight`)];
        const out = shapes.reduce((acc, sh) => acc + (sh?.[0] ?? NaN), 0);
        if (shapes.some((sh) => !sh || sh[1] !== s.in) || out !== s.out) {
          throw new Error(
            `${source}: site "${s.path}" (in ${s.in}, out ${s.out}) does not exist with those shapes in the base model`,
          );
        }
      }
      return {
        ...state,
        sites: j.sites.map((s) => ({ ...s })),
        leaves: j.leaves.map((l) => ({ ...l, shape: [...l.shape], init: initializerFrom(l.init) })),
        baseTrainable: [...j.baseTrainable],
      };
    },
  };
  return withMeta(compose(step), j.meta);
}

/**
 * Writes `dir/adapter.safetensors` and `dir/adapter.json`, each atomically.
 * Stored: the trainable adapter leaves, trainable base leaves (e.g. norms),
 * and the frozen adapter leaves (VeRA's random A and B) — never the frozen
 * base model. Tied leaves are stored once. `frozen` is needed because the
 * plan is resolved against the base model's shapes.
 */
export async function saveAdapter(
  dir: string,
  plan: Plan,
  trainable: PlanTree,
  frozen: PlanTree,
  base: BaseModelInfo = {},
): Promise<void> {
  if (!frozen) throw new Error("saveAdapter: pass the frozen tree too (saveAdapter(dir, plan, trainable, frozen))");
  const { json, safetensors } = await adapterToBytes(plan, trainable, frozen, base);
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(`${dir}/adapter.safetensors`, safetensors);
  await writeTextAtomic(`${dir}/adapter.json`, json);
}

/**
 * Reads an adapter written by {@link saveAdapter} onto `base` (the model's
 * parameter tree): returns the same plan (as a restored resolution with the
 * original meta), and `{trainable, frozen}` bit-identical to what was saved.
 *
 * The files are untrusted: adapter.json is checked against a schema and the
 * base model before any tensor is read (see io/adapter_json.ts), the
 * safetensors file must hold exactly the tensors adapter.json lists, and on
 * any error every tensor read so far is released.
 */
export async function loadAdapter(
  dir: string,
  base: Tree,
): Promise<{ plan: Plan; trainable: PlanTree; frozen: PlanTree }> {
  const jsonPath = `${dir}/adapter.json`;
  const fail = (m: string) => new Error(`loadAdapter: ${jsonPath}: ${m}`);
  const text = await readTextLimited(jsonPath, SIDE_FILE_LIMITS.maxChars, fail);
  const raw = parseJson(text, SIDE_FILE_LIMITS, fail);
  if (!isJsonObject(raw) || raw.format !== FORMAT || raw.version !== VERSION) {
    const r = isJsonObject(raw) ? raw : {};
    throw new Error(
      `loadAdapter: ${jsonPath} is not a ${FORMAT} v${VERSION} file (format ${
        JSON.stringify(r.format) ?? "undefined"
      }, version ${JSON.stringify(r.version) ?? "undefined"})`,
    );
  }
  const j = checkAdapterJson(raw, shapesOf(base), fail);
  const plan = planFromJson(j, jsonPath);
  const r = plan.resolve(base);
  const weightsPath = `${dir}/adapter.safetensors`;
  const stored = new Map<string, Tensor>();
  try {
    const reader = await SafetensorsFile.open(weightsPath);
    try {
      const listed = new Set(j.stored);
      const extra = reader.names.filter((n) => !listed.has(n));
      const missing = j.stored.filter((n) => !reader.has(n));
      if (extra.length || missing.length) {
        throw new Error(
          `loadAdapter: ${weightsPath} does not match ${jsonPath}: ${
            [
              missing.length ? `missing ${missing.slice(0, 3).map(quote).join(", ")}` : "",
              extra.length
                ? `unlisted tensors ${extra.slice(0, 3).map(quote).join(", ")}${
                  extra.length > 3 ? ` (+${extra.length - 3} more)` : ""
                }`
                : "",
            ].filter(Boolean).join("; ")
          }`,
        );
      }
      // Shapes and dtypes from the header, before any tensor is read.
      const baseShapes = shapesOf(base);
      const expected = new Map<string, number[]>([
        ...r.leaves.map((l) => [storagePath(l), l.shape] as [string, number[]]),
        ...r.baseTrainable.map((p) => [`base.${p}`, baseShapes.get(p)!] as [string, number[]]),
      ]);
      for (const name of j.stored) {
        const info = reader.info(name), shape = expected.get(name)!;
        if (!sameShape(info.shape, shape) || !["F32", "F16", "BF16", "F64"].includes(info.dtype)) {
          throw new Error(
            `loadAdapter: ${weightsPath}: ${quote(name)} is ${fmt(info.shape)} ${info.dtype}, adapter.json expects ${
              fmt(shape)
            } float`,
          );
        }
      }
      for (const name of j.stored) stored.set(name, await reader.tensor(name));
    } finally {
      reader.close();
    }
    const take = (name: string, shape: number[]): Tensor => {
      const t = stored.get(name)!;
      if (!sameShape(t.shape, shape) || t.dtype !== "float32") {
        throw new Error(
          `loadAdapter: ${weightsPath}: "${name}" is ${fmt(t.shape)} ${t.dtype}, adapter.json expects ${
            fmt(shape)
          } float32`,
        );
      }
      return t;
    };
    const trainable: PlanTree = { base: null, tied: {}, sites: null };
    const frozen: PlanTree = { base: null, tied: {}, sites: null };
    const trainableBase = new Set(r.baseTrainable);
    [trainable.base, frozen.base] = tree.partition(base, (p) => trainableBase.has(p));
    trainable.base = tree.map(trainable.base, (t, p) => take(`base.${p}`, [...t.shape]));
    const sitesT: Record<string, unknown> = {}, sitesF: Record<string, unknown> = {};
    for (const leaf of r.leaves) {
      const value = take(storagePath(leaf), leaf.shape);
      if (leaf.group !== null) {
        (leaf.trainable ? trainable : frozen).tied[leaf.group] = value;
        if (!Object.hasOwn((leaf.trainable ? frozen : trainable).tied, leaf.group)) {
          (leaf.trainable ? frozen : trainable).tied[leaf.group] = null;
        }
      } else setAt(leaf.trainable ? sitesT : sitesF, leaf.path, value);
    }
    trainable.sites = holesToNull(sitesT) as Tree;
    frozen.sites = holesToNull(sitesF) as Tree;
    return { plan, trainable, frozen };
  } catch (e) {
    for (const t of stored.values()) t.dispose();
    throw e;
  }
}

/** Places `value` at a dotted path (validated by checkAdapterJson: plain segments only, sites of the plan). */
function setAt(root: Record<string, unknown>, path: string, value: unknown): void {
  const segs = path.split(".");
  let node = root;
  segs.forEach((s, i) => {
    if (PROTO_KEYS.has(s)) throw new Error(`loadAdapter: path "${path}" has a prototype key`);
    if (i === segs.length - 1) node[s] = value;
    else {
      if (!Object.hasOwn(node, s)) node[s] = /^\d+$/.test(segs[i + 1]) ? [] : {};
      node = node[s] as Record<string, unknown>;
    }
  });
}

function holesToNull(x: unknown): unknown {
  if (Array.isArray(x)) return Array.from({ length: x.length }, (_, i) => holesToNull(x[i] ?? null));
  if (x && typeof x === "object" && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, holesToNull(v)]));
  }
  return x;
}

// ---------------------------------------------------------------- PEFT LoRA

/** knot linear node (relative to `layers.{i}`) → HF module name (relative to `model.layers.{i}`). */
const HF_MODULES: Record<string, string> = {
  "attn.q": "self_attn.q_proj",
  "attn.k": "self_attn.k_proj",
  "attn.v": "self_attn.v_proj",
  "attn.o": "self_attn.o_proj",
  "mlp.gate": "mlp.gate_proj",
  "mlp.up": "mlp.up_proj",
  "mlp.down": "mlp.down_proj",
};
const KNOT_MODULES = Object.fromEntries(Object.entries(HF_MODULES).map(([k, v]) => [v, k]));
const PREFIX = "base_model.model.model.layers.";

function hfModuleOf(module: string): string {
  const m = module.match(/^layers\.(\d+)\.(.+)$/);
  const hf = m && HF_MODULES[m[2]];
  if (!hf) {
    throw new Error(
      `exportPeftLora: module "${module}" has no Hugging Face Llama name (supported: layers.N.${
        Object.keys(HF_MODULES).join(", layers.N.")
      })`,
    );
  }
  return `${PREFIX}${m![1]}.${hf}`;
}

/** Options of {@link exportPeftLora}. */
export interface PeftExportOptions {
  /** `base_model_name_or_path` in adapter_config.json. */
  baseModel?: string;
}

/**
 * Writes a Hugging Face PEFT LoRA adapter (`adapter_config.json`,
 * `adapter_model.safetensors`) equivalent to the plan: per module, lora_A =
 * diag(u)·A and lora_B = diag(v)·B restricted to the module's rows, with
 * lora_alpha = r (scale 1). Exact for every preset (TIED_LORA.md §4); a
 * module adapted at two sites gets their factors concatenated (rank r1 + r2).
 * A plan that trains base leaves (e.g. norms) cannot be exported: an Error.
 */
export async function exportPeftLora(
  dir: string,
  plan: Plan,
  trainable: PlanTree,
  frozen: PlanTree,
  opts: PeftExportOptions = {},
): Promise<void> {
  const trainedBase = tree.paths(trainable.base);
  if (trainedBase.length) {
    throw new Error(
      `exportPeftLora: the plan trains base leaves (${trainedBase.slice(0, 3).join(", ")}${
        trainedBase.length > 3 ? ", …" : ""
      }), which a PEFT LoRA adapter cannot hold; use saveAdapter, or merge and save the model`,
    );
  }
  // A module adapted at two sites (e.g. the fused qkv and q itself) gets one factor pair of rank
  // r1 + r2: A = [A1; A2], B = [B1 | B2], so B·A = B1·A1 + B2·A2 exactly.
  const byModule = new Map<string, LoraFactors>();
  for (const f of toLoraFactors(plan, trainable, frozen)) {
    const prev = byModule.get(f.module);
    byModule.set(f.module, prev ? { module: f.module, A: concat([prev.A, f.A], 0), B: concat([prev.B, f.B], 1) } : f);
  }
  const factors = [...byModule.values()];
  if (!factors.length) throw new Error("exportPeftLora: the plan has no site with both A and B");
  const ranks = new Set(factors.map((f) => f.A.shape[0]));
  const r = factors[0].A.shape[0];
  const tensors: Record<string, Tensor> = {};
  const targets = new Set<string>();
  const rankPattern: Record<string, number> = {};
  for (const f of factors) {
    const hf = hfModuleOf(f.module);
    targets.add(hf.split(".").at(-1)!);
    tensors[`${hf}.lora_A.weight`] = f.A;
    tensors[`${hf}.lora_B.weight`] = f.B;
    if (ranks.size > 1 && f.A.shape[0] !== r) rankPattern[hf.slice("base_model.model.".length)] = f.A.shape[0];
  }
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: opts.baseModel ?? null,
    r,
    lora_alpha: r,
    ...(Object.keys(rankPattern).length ? { rank_pattern: rankPattern, alpha_pattern: rankPattern } : {}),
    target_modules: [...targets].sort(),
    lora_dropout: 0,
    bias: "none",
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    inference_mode: true,
  };
  await Deno.mkdir(dir, { recursive: true });
  await saveSafetensors(`${dir}/adapter_model.safetensors`, tensors, { format: "pt" });
  await writeTextAtomic(`${dir}/adapter_config.json`, JSON.stringify(config, null, 2) + "\n");
}

/** Largest LoRA rank accepted from a PEFT config (real adapters use 4–256; a few go to 1024). */
const MAX_PEFT_RANK = 65536;

function positiveNumber(v: unknown, what: string, fail: (m: string) => Error, integer = false): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw fail(`${what} must be a positive ${integer ? "integer" : "finite number"}, got ${JSON.stringify(v)}`);
  }
  if (integer && v > MAX_PEFT_RANK) throw fail(`${what} is ${v}, over the bound of ${MAX_PEFT_RANK}`);
  return v;
}

/** A `rank_pattern` / `alpha_pattern` object, its values checked. */
function patternOf(raw: unknown, key: string, fail: (m: string) => Error, integer: boolean): Map<string, number> {
  const out = new Map<string, number>();
  if (raw === undefined || raw === null) return out;
  if (!isJsonObject(raw)) throw fail(`"${key}" must be an object of module name → number, got ${JSON.stringify(raw)}`);
  for (const [k, v] of Object.entries(raw)) out.set(k, positiveNumber(v, `"${key}" value for "${k}"`, fail, integer));
  return out;
}

/**
 * Reads a Hugging Face PEFT LoRA adapter (any r, lora_alpha, target_modules,
 * rank_pattern/alpha_pattern, rsLoRA scaling) into a `lora` plan on `base`,
 * with the scale alpha/r folded into B. adapter_config.json is checked first
 * (r and lora_alpha positive numbers, patterns numeric); every tensor must be
 * a lora_A/lora_B pair of a Llama linear of `base`, with that linear's widths.
 * On any error every tensor read is released.
 */
export async function importPeftLora(
  dir: string,
  base: Tree,
): Promise<{ plan: Plan; trainable: PlanTree; frozen: PlanTree }> {
  const cfgPath = `${dir}/adapter_config.json`;
  const fail = (m: string) => new Error(`importPeftLora: ${cfgPath}: ${m}`);
  const raw = parseJson(await readTextLimited(cfgPath, SIDE_FILE_LIMITS.maxChars, fail), SIDE_FILE_LIMITS, fail);
  if (!isJsonObject(raw)) throw fail("expected a JSON object");
  const cfg = raw;
  if (cfg.peft_type !== "LORA") {
    throw new Error(`importPeftLora: ${cfgPath} has peft_type ${JSON.stringify(cfg.peft_type)}, expected "LORA"`);
  }
  if (cfg.use_dora === true) throw new Error(`importPeftLora: ${cfgPath} uses DoRA, which is not supported`);
  if (cfg.bias !== undefined && cfg.bias !== null && cfg.bias !== "none") {
    throw new Error(
      `importPeftLora: ${cfgPath} trains biases (bias ${JSON.stringify(cfg.bias)}), which is not supported`,
    );
  }
  if (cfg.fan_in_fan_out === true) {
    throw new Error(`importPeftLora: ${cfgPath} has fan_in_fan_out (Conv1D layout), which Llama does not use`);
  }
  for (const k of ["use_rslora", "use_dora", "fan_in_fan_out"]) {
    if (cfg[k] !== undefined && cfg[k] !== null && typeof cfg[k] !== "boolean") {
      throw fail(`"${k}" must be true or false, got ${JSON.stringify(cfg[k])}`);
    }
  }
  const r0 = positiveNumber(cfg.r, `"r"`, fail, true);
  const alpha0 = positiveNumber(cfg.lora_alpha ?? cfg.r, `"lora_alpha"`, fail);
  const rankPattern = patternOf(cfg.rank_pattern, "rank_pattern", fail, true);
  const alphaPattern = patternOf(cfg.alpha_pattern, "alpha_pattern", fail, false);
  const patternFor = (pattern: Map<string, number>, module: string, fallback: number) => {
    for (const [p, v] of pattern) if (module === p || module.endsWith(`.${p}`)) return v;
    return fallback;
  };
  const weightsPath = `${dir}/adapter_model.safetensors`;
  const wfail = (m: string) => new Error(`importPeftLora: ${weightsPath}: ${m}`);
  const baseShapes = shapesOf(base);
  const stored = new Map<string, Tensor>();
  const scaled: Tensor[] = [];
  try {
    const reader = await SafetensorsFile.open(weightsPath);
    // Check every name and shape from the header before reading any tensor.
    const pairs: { module: string; moduleKey: string; a: string; b: string; r: number; alpha: number }[] = [];
    try {
      const modules = new Set<string>();
      const seenB = new Set<string>();
      for (const name of reader.names) {
        const m = name.match(/^(?:base_model\.model\.)?model\.layers\.(\d+)\.(.+)\.lora_A(?:\.default)?\.weight$/);
        if (!m) {
          if (!/\.lora_B(\.default)?\.weight$/.test(name)) throw wfail(`unexpected tensor ${quote(name)}`);
          continue;
        }
        const knot = Object.hasOwn(KNOT_MODULES, m[2]) ? KNOT_MODULES[m[2]] : undefined;
        if (!knot) throw wfail(`module ${quote(m[2])} is not a Llama linear knot knows`);
        const bName = name.replace(".lora_A", ".lora_B");
        if (!reader.has(bName)) throw wfail(`${quote(name)} has no matching ${quote(bName)}`);
        seenB.add(bName);
        const module = `layers.${m[1]}.${knot}`;
        if (modules.has(module)) throw wfail(`module ${quote(`model.layers.${m[1]}.${m[2]}`)} has two lora_A tensors`);
        modules.add(module);
        const w = baseShapes.get(`${module}.weight`);
        if (!w || w.length !== 2) throw wfail(`${quote(name)}: the base model has no linear "${module}"`);
        const moduleKey = `model.layers.${m[1]}.${m[2]}`;
        const r = patternFor(rankPattern, moduleKey, r0);
        const alpha = patternFor(alphaPattern, moduleKey, alpha0);
        const A = reader.info(name), B = reader.info(bName);
        if (!sameShape(A.shape, [r, w[1]]) || !sameShape(B.shape, [w[0], r])) {
          throw wfail(
            `"${moduleKey}" has lora_A ${fmt(A.shape)} and lora_B ${fmt(B.shape)}, expected rank ${r}: ${
              fmt([r, w[1]])
            } and ${fmt([w[0], r])}`,
          );
        }
        for (const [n, info] of [[name, A], [bName, B]] as const) {
          if (!["F32", "F16", "BF16", "F64"].includes(info.dtype)) {
            throw wfail(`${quote(n)} is ${info.dtype}, expected a float type`);
          }
        }
        pairs.push({ module, moduleKey, a: name, b: bName, r, alpha });
      }
      const orphan = reader.names.find((n) => !n.includes(".lora_A") && !seenB.has(n));
      if (orphan !== undefined) throw wfail(`${quote(orphan)} has no matching lora_A`);
      if (!pairs.length) throw wfail("holds no lora_A/lora_B pairs");
      for (const p of pairs) {
        stored.set(p.a, await reader.tensor(p.a));
        stored.set(p.b, await reader.tensor(p.b));
      }
    } finally {
      reader.close();
    }
    const factors: LoraFactors[] = pairs.map((p) => {
      const scale = cfg.use_rslora === true ? p.alpha / Math.sqrt(p.r) : p.alpha / p.r;
      const B = stored.get(p.b)!;
      if (scale === 1) return { module: p.module, A: stored.get(p.a)!, B };
      const Bs = scope(() => mul(B, scale)); // the scope releases the scalar operand
      scaled.push(Bs);
      return { module: p.module, A: stored.get(p.a)!, B: Bs };
    });
    const out = fromLoraFactors(factors, base);
    // The unscaled B factors were replaced by their scaled copies: release them.
    for (const p of pairs) if (!factors.some((f) => f.B === stored.get(p.b))) stored.get(p.b)!.dispose();
    return out;
  } catch (e) {
    for (const t of stored.values()) t.dispose();
    for (const t of scaled) t.dispose();
    throw e;
  }
}

// ---------------------------------------------------------------- adapter as bytes (browser-safe)

/** The two files of an adapter, in memory (see {@link adapterToBytes}). */
export interface AdapterBytes {
  /** The text of `adapter.json`. */
  json: string;
  /** The bytes of `adapter.safetensors`. */
  safetensors: Uint8Array;
}

/**
 * The contents of {@link saveAdapter}'s two files, as a string and bytes
 * (nothing is written: for a browser's download button, or any storage).
 * Same stored leaves, same bytes as `saveAdapter` writes.
 * @example
 * ```ts ignore
 * const { json, safetensors } = await adapterToBytes(plan, trainable, frozen);
 * const url = URL.createObjectURL(new Blob([safetensors]));
 * ```
 */
export async function adapterToBytes(
  plan: Plan,
  trainable: PlanTree,
  frozen: PlanTree,
  base: BaseModelInfo = {},
): Promise<AdapterBytes> {
  if (!frozen) throw new Error("adapterToBytes: pass the frozen tree too (adapterToBytes(plan, trainable, frozen))");
  const r = plan.resolve(tree.combine(trainable.base, frozen.base));
  const tensors: Record<string, Tensor> = {};
  const put = (name: string, t: Tensor | null | undefined) => {
    if (t) tensors[name] = t;
  };
  for (const [p, t] of tree.entries(trainable.sites)) put(`sites.${p}`, t);
  for (const [g, t] of Object.entries(trainable.tied)) put(`tied.${g}`, t);
  for (const [p, t] of tree.entries(trainable.base)) put(`base.${p}`, t);
  for (const [p, t] of tree.entries(frozen.sites)) put(`sites.${p}`, t);
  for (const [g, t] of Object.entries(frozen.tied)) put(`tied.${g}`, t);
  const json: AdapterJson = {
    format: FORMAT,
    version: VERSION,
    meta: plan.meta,
    transforms: plan.transforms.map((t) => t.describe),
    sites: r.sites,
    leaves: r.leaves.map((l) => ({ ...l, init: { name: l.init.name, args: { ...l.init.args } } })),
    baseTrainable: r.baseTrainable,
    stored: Object.keys(tensors).sort(),
    base,
  };
  return {
    json: JSON.stringify(json, null, 2) + "\n",
    safetensors: await serializeSafetensors(tensors, { format: FORMAT }),
  };
}
