// Seeded fuzzing of every loader that reads files strangers publish (issue 17):
// safetensors, config.json (loadLlama), the sharded index, adapter.json and
// adapter.safetensors (loadAdapter), PEFT adapter_config.json and its weights
// (importPeftLora), and tokenizer.json / tokenizer_config.json (loadTokenizer,
// then encode and decode). Valid files are mutated structurally (values,
// keys, prototype keys, nesting, duplicates) and as text/bytes (truncation,
// flips, deep nesting). Every case must end in one of two allowed outcomes:
//
//   loaded   — a clean load (results released again afterwards), or
//   refused  — an Error (not a TypeError/RangeError/SyntaxError) whose message
//              names the file (its path) and the problem,
//
// and, per case: under 2 s (of CPU time, read from /proc/self/stat, so that a
// busy shared machine does not fail it; wall time where /proc is absent; and
// under 10 s of wall time in any case, against hangs); peak RSS growth ≤ 16 × the case's file bytes +
// 64 MiB (the floor absorbs V8 heap-growth granularity; Linux VmHWM, reset per
// case through /proc/self/clear_refs); no buffer left live (`liveBuffers()`);
// Object.prototype, Array.prototype and Function.prototype unchanged.
//
// Default 3,000 cases (~500 per loader). Longer runs:
//   KNOT_UNTRUSTED_FUZZ_CASES=10000 deno test -A tests/io/untrusted_fuzz_test.ts
// (KNOT_UNTRUSTED_FUZZ_SEED picks another seed).
import assert from "node:assert/strict";
import { dispose, liveBuffers } from "../../mod.ts";
import { key } from "../../core/random.ts";
import { randomLlama } from "../../llama/mod.ts";
import { exportPeftLora, importPeftLora, loadAdapter, saveAdapter } from "../../io/adapter.ts";
import { loadLlama, saveLlama } from "../../io/hf.ts";
import { loadSafetensors, saveSafetensors } from "../../io/safetensors.ts";
import { loadTokenizer } from "../../io/tokenizer.ts";
import { preset } from "../../peft/methods/presets.ts";
import type { PlanTree } from "../../peft/plan.ts";
import type { Tree } from "../../core/tree.ts";

function envNumber(name: string): number | undefined {
  try {
    const v = Deno.env.get(name);
    return v ? Number(v) : undefined;
  } catch {
    return undefined;
  }
}

const CASES = envNumber("KNOT_UNTRUSTED_FUZZ_CASES") ?? 3000;
const SEED = envNumber("KNOT_UNTRUSTED_FUZZ_SEED") ?? 0x17f022;
const TIME_LIMIT_MS = 2000; // CPU time per load (wall time where /proc is absent)
const HANG_LIMIT_MS = 10_000; // wall time per load, whatever the machine's load
const MEMORY_MULTIPLE = 16;
const MEMORY_FLOOR = 64 * 2 ** 20;

/** mulberry32: a tiny deterministic PRNG returning floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
const chance = (p: number) => rand() < p;

// ---------------------------------------------------------------- mutations

const PATTERNS = [
  "(a+)+$",
  "(a|a)*$",
  "(\\w|\\d)+!",
  "(.*a){20}",
  "((ab)*c)*$",
  "(",
  "[",
  "\\p{Zzz}",
  "a{2,1}",
  " ?[a-z]+|\\s+",
  "\\s+(?!\\S)|\\s+",
  "(?i:'s|'t)|\\p{L}+",
  "",
];

function deepArray(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function weird(): unknown {
  return pick<() => unknown>([
    () => pick([null, true, false, 0, -1, 1, 2, 3, 0.5, -0.5, 1e308, -1e308, 2 ** 31, 2 ** 53 + 2, 1e9, 1e-300]),
    () => pick(["", "x", "A", "Z", "__proto__", "constructor", "prototype", "1e999", "F32", "LORA", "llama"]),
    () => pick([[], {}, [1, 2], [0], [-1, 5], { a: 1 }, ["x"], [[1]], [1e9, 1e9]]),
    () => deepArray(int(3) === 0 ? 40 : 5),
    () => ({ Regex: pick(PATTERNS) }),
    () => int(1 << 20),
  ])();
}

type Json = Record<string, unknown> | unknown[];

/** A random container in `root` (biased towards shallow ones) and one of its keys. */
function randomSlot(root: Json): [Json, string | number] | null {
  let node: Json = root;
  for (let depth = 0; depth < 12; depth++) {
    const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (!keys.length) return null;
    const k = pick(keys);
    const child = (node as Record<string | number, unknown>)[k];
    if (child === null || typeof child !== "object" || chance(0.35)) return [node, k];
    node = child as Json;
  }
  return null;
}

function setOwn(obj: Json, k: string | number, v: unknown): void {
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function mutateJson(value: unknown): string {
  const root = structuredClone(value) as Json;
  for (let n = 1 + int(3); n > 0; n--) {
    const slot = randomSlot(root);
    if (!slot) break;
    const [node, k] = slot;
    const rec = node as Record<string | number, unknown>;
    switch (int(8)) {
      case 0:
      case 1:
        setOwn(node, k, weird());
        break;
      case 2: // delete
        if (Array.isArray(node)) node.splice(k as number, 1);
        else delete rec[k];
        break;
      case 3: // add a key (prototype keys included)
        if (!Array.isArray(node)) {
          setOwn(node, pick(["__proto__", "constructor", "prototype", "extra", "x.y"]), weird());
        } else node.push(weird());
        break;
      case 4: { // rename a key (e.g. a part "A" → "Z", a site path)
        if (Array.isArray(node)) break;
        const v = rec[k];
        delete rec[k];
        setOwn(node, pick([`${k}x`, String(k).toUpperCase(), "__proto__", "constructor", ""]), v);
        break;
      }
      case 5: // a number nudged
        if (typeof rec[k] === "number") {
          setOwn(node, k, pick([(rec[k] as number) + 1, -(rec[k] as number), (rec[k] as number) * 1e6, 0]));
        } else if (typeof rec[k] === "string") {
          setOwn(node, k, pick([`${rec[k]}.x`, `constructor.prototype.${rec[k]}`, "", (rec[k] as string).slice(1)]));
        } else setOwn(node, k, weird());
        break;
      case 6: // duplicate a value into another slot
        if (Array.isArray(node)) node.push(structuredClone(rec[k]));
        else setOwn(node, `${k}_copy`, structuredClone(rec[k]));
        break;
      case 7: // grow a list a lot
        if (Array.isArray(node) && node.length) {
          for (let i = 0, m = pick([10, 1000, 20000]); i < m; i++) node.push(structuredClone(node[0]));
        } else setOwn(node, k, weird());
        break;
    }
  }
  let text = JSON.stringify(root);
  if (chance(0.15)) text = mutateText(text);
  return text;
}

function mutateText(text: string): string {
  switch (int(6)) {
    case 0:
      return text.slice(0, int(text.length + 1));
    case 1: {
      const i = int(text.length);
      return text.slice(0, i) + pick(['"', "{", "[", "}", "]", ",", ":", "\\", "\u0000", "é"]) + text.slice(i + 1);
    }
    case 2:
      return text.replace(/\d+/, pick(["1e999", "-0", "99999999999999999999", "0.0000001"]));
    case 3: { // a duplicate key right after an opening brace
      const i = text.indexOf("{", int(text.length));
      return i < 0 ? text : `${text.slice(0, i + 1)}"dup":1,"dup":2,${text.slice(i + 1)}`;
    }
    case 4:
      return "[".repeat(pick([100, 5000, 200000])) + text;
    default:
      return `${text.slice(0, -1)},${'{"a":'.repeat(300)}1${"}".repeat(300)}}`;
  }
}

function mutateBytes(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  switch (int(4)) {
    case 0:
      return out.subarray(0, int(out.length + 1));
    case 1:
      for (let n = 1 + int(4); n > 0; n--) out[int(out.length)] ^= 1 << int(8);
      return out;
    case 2: // the length prefix
      out[int(8)] = int(256);
      return out;
    default: {
      const grown = new Uint8Array(out.length + 1 + int(64));
      grown.set(out);
      return grown;
    }
  }
}

/** Safetensors bytes with the header JSON mutated (data kept), or the bytes mutated. */
function mutateSafetensors(bytes: Uint8Array): Uint8Array {
  if (chance(0.3)) return mutateBytes(bytes);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const json = new TextEncoder().encode(mutateJson(header));
  const out = new Uint8Array(8 + json.length + bytes.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + n), 8 + json.length);
  return out;
}

function withHeader(json: string, data = new Uint8Array(0)): Uint8Array {
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + body.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.length), true);
  out.set(body, 8);
  out.set(data, 8 + body.length);
  return out;
}

/** A safetensors file of 0.5–8 MB whose size is all header. */
function largeHeader(): Uint8Array {
  const n = pick([5_000, 20_000, 140_000]); // 140k is over MAX_TENSORS (refused); 20k zero-size tensors load
  switch (int(4)) {
    case 0:
      return withHeader(
        `{${Array.from({ length: n }, (_, i) => `"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`)}}`,
      );
    case 1:
      return withHeader("[".repeat(n * 50));
    case 2: // one tensor with a multi-megabyte name
      return withHeader(`{"${"x".repeat(n * 50)}":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, new Uint8Array(1));
    default: // many tensors with long shapes
      return withHeader(
        `{${
          Array.from({ length: n / 10 }, (_, i) =>
            `"t${i}":{"dtype":"U8","shape":[${"1,".repeat(40)}1],"data_offsets":[${i},${i + 1}]}`)
        }}`,
        new Uint8Array(n / 10),
      );
  }
}

// ---------------------------------------------------------------- base files

const { config: CONFIG, params: PARAMS } = randomLlama({
  seed: 5,
  numLayers: 2,
  hiddenSize: 16,
  numHeads: 2,
  intermediateSize: 24,
  vocabSize: 32,
});
const BASE = PARAMS as unknown as Tree;

const SYNTH_TOKENIZER = {
  version: "1.0",
  added_tokens: [
    { id: 0, content: "<unk>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 1, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 2, content: "</s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ],
  normalizer: { type: "Sequence", normalizers: [{ type: "Replace", pattern: { Regex: "\\s+" }, content: " " }] },
  pre_tokenizer: {
    type: "Split",
    pattern: { Regex: " ?[a-z]+| ?[^a-z\\s]+|\\s+" },
    behavior: "Isolated",
    invert: false,
  },
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
    vocab: { "<unk>": 0, "<s>": 1, "</s>": 2, a: 3, b: 4, c: 5, " ": 6, "!": 7, ab: 8, abc: 9, " a": 10, aa: 11 },
    merges: ["a b", "ab c", "  a", "a a"],
  },
};

interface Kind {
  name: string;
  /** Writes one mutated case into `dir`; returns the bytes written. */
  write(dir: string): Promise<number>;
  /** Loads the case and releases what it loaded. */
  load(dir: string): Promise<void>;
}

/**
 * Releases a name → tensor record value by value: a file may name a tensor "constructor" or "__proto__",
 * which the tree functions (and so `dispose`) refuse as keys.
 */
function disposeRecord(r: Record<string, { dispose(): void }>): void {
  for (const t of Object.values(r)) t.dispose();
}

function disposeAdapter(a: { trainable: PlanTree; frozen: PlanTree }): void {
  dispose([a.trainable.sites, a.trainable.tied, a.trainable.base, a.frozen.sites, a.frozen.tied]);
}

async function write(path: string, data: string | Uint8Array): Promise<number> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  await Deno.writeFile(path, bytes);
  return bytes.length;
}

async function setup(root: string): Promise<Kind[]> {
  const model = `${root}/base_model`;
  await saveLlama(model, PARAMS, CONFIG);
  const modelBytes = await Deno.readFile(`${model}/model.safetensors`);
  const configJson = JSON.parse(await Deno.readTextFile(`${model}/config.json`));

  // Two shards and their index.
  const all = await loadSafetensors(`${model}/model.safetensors`);
  const names = Object.keys(all).sort();
  const half = Math.ceil(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const shardBytes: Uint8Array[] = [];
  for (const [i, part] of shards.entries()) {
    const path = `${root}/shard${i}.safetensors`;
    await saveSafetensors(path, Object.fromEntries(part.map((n) => [n, all[n]])));
    shardBytes.push(await Deno.readFile(path));
  }
  dispose(all);
  const index = {
    metadata: { total_size: modelBytes.length },
    weight_map: Object.fromEntries(shards.flatMap((part, i) => part.map((n) => [n, `model-0000${i + 1}.safetensors`]))),
  };

  // knot adapters of three presets, and a PEFT export.
  const adapters: { json: unknown; weights: Uint8Array }[] = [];
  for (const name of ["lora", "vera", "tl6"]) {
    const plan = preset(name, { rank: 2 });
    const { trainable, frozen } = plan.init(BASE, key(1));
    const dir = `${root}/adapter_${name}`;
    await saveAdapter(dir, plan, trainable, frozen);
    adapters.push({
      json: JSON.parse(await Deno.readTextFile(`${dir}/adapter.json`)),
      weights: await Deno.readFile(`${dir}/adapter.safetensors`),
    });
    disposeAdapter({ trainable, frozen });
  }
  const plan = preset("lora", { rank: 2, where: (p: string) => /^layers\.\d+\.(attn\.q|mlp\.up)$/.test(p) });
  const init = plan.init(BASE, key(2));
  await exportPeftLora(`${root}/peft`, plan, init.trainable, init.frozen);
  disposeAdapter(init);
  const peftConfig = JSON.parse(await Deno.readTextFile(`${root}/peft/adapter_config.json`));
  const peftWeights = await Deno.readFile(`${root}/peft/adapter_model.safetensors`);

  const tokenizers: unknown[] = [SYNTH_TOKENIZER];
  try {
    tokenizers.push(JSON.parse(await Deno.readTextFile("../shared/models/stories260K/tokenizer.json")));
  } catch {
    console.log(
      "untrusted fuzz: ../shared/models/stories260K/tokenizer.json absent; fuzzing the synthetic tokenizer only",
    );
  }
  const tokConfig = { add_bos_token: true, bos_token: "<s>", eos_token: "</s>" };

  return [
    {
      // Megabyte headers (many zero-size tensors, deep nesting, huge names): the memory bound's multiple matters here.
      name: "large header",
      write: (dir) => write(`${dir}/model.safetensors`, largeHeader()),
      load: async (dir) => disposeRecord(await loadSafetensors(`${dir}/model.safetensors`)),
    },
    {
      name: "safetensors",
      write: (dir) => write(`${dir}/model.safetensors`, mutateSafetensors(modelBytes)),
      load: async (dir) => disposeRecord(await loadSafetensors(`${dir}/model.safetensors`)),
    },
    {
      name: "config.json",
      write: async (dir) =>
        (await write(`${dir}/config.json`, mutateJson(configJson))) +
        await write(`${dir}/model.safetensors`, modelBytes),
      load: async (dir) => dispose((await loadLlama(dir)).params),
    },
    {
      name: "index",
      write: async (dir) => {
        let n = await write(`${dir}/model.safetensors.index.json`, mutateJson(index));
        for (const [i, b] of shardBytes.entries()) {
          n += await write(`${dir}/model-0000${i + 1}.safetensors`, chance(0.1) ? mutateSafetensors(b) : b);
        }
        return n;
      },
      load: async (dir) => disposeRecord(await loadSafetensors(`${dir}/model.safetensors.index.json`)),
    },
    {
      name: "adapter.json",
      write: async (dir) => {
        const a = pick(adapters);
        const weightsMutated = chance(0.15);
        return (await write(`${dir}/adapter.json`, weightsMutated ? JSON.stringify(a.json) : mutateJson(a.json))) +
          await write(`${dir}/adapter.safetensors`, weightsMutated ? mutateSafetensors(a.weights) : a.weights);
      },
      load: async (dir) => disposeAdapter(await loadAdapter(dir, BASE)),
    },
    {
      name: "adapter_config.json",
      write: async (dir) => {
        const weightsMutated = chance(0.2);
        return (await write(
          `${dir}/adapter_config.json`,
          weightsMutated ? JSON.stringify(peftConfig) : mutateJson(peftConfig),
        )) +
          await write(
            `${dir}/adapter_model.safetensors`,
            weightsMutated ? mutateSafetensors(peftWeights) : peftWeights,
          );
      },
      load: async (dir) => dispose((await importPeftLora(dir, BASE)).trainable.sites),
    },
    {
      name: "tokenizer.json",
      write: async (dir) => {
        const configMutated = chance(0.1);
        const t = pick(tokenizers);
        return (await write(`${dir}/tokenizer.json`, configMutated ? JSON.stringify(t) : mutateJson(t))) +
          await write(
            `${dir}/tokenizer_config.json`,
            configMutated ? mutateJson(tokConfig) : JSON.stringify(tokConfig),
          );
      },
      load: async (dir) => {
        const tok = await loadTokenizer(dir);
        for (const text of ["a".repeat(28) + "!", "abc ab  a!!", "Once upon a time", "é🙂\u0000"]) {
          tok.decode(tok.encode(text));
        }
      },
    },
  ];
}

// ---------------------------------------------------------------- the run

const HWM = /VmHWM:\s+(\d+)/, RSS = /VmRSS:\s+(\d+)/;
function procStatus(re: RegExp): number {
  return Number(re.exec(Deno.readTextFileSync("/proc/self/status"))![1]) * 1024;
}
/** Resets the peak-RSS mark and returns the current RSS, or null where /proc does not allow it. */
function resetPeak(): number | null {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return procStatus(RSS);
  } catch {
    return null;
  }
}

/**
 * CPU time of this thread in ms (user + system, from /proc/thread-self/stat; 10 ms ticks), or null.
 * The 2 s budget is held against CPU time where it is available: wall time on a machine shared by
 * several jobs (2 cores, load 6–8 here) stretches a 0.4 s load past 2 s without the load doing more work.
 */
function cpuMs(): number | null {
  try {
    // The thread's, not the process's: the loader runs on it, while other test modules (`deno test --parallel`)
    // run on other threads of the same process.
    const fields = Deno.readTextFileSync("/proc/thread-self/stat").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime (fields 14, 15 of the full line)
  } catch {
    return null;
  }
}

function protoSnapshot(): string {
  return [Object.prototype, Array.prototype, Function.prototype]
    .map((p) => Reflect.ownKeys(p).map(String).sort().join(",")).join("|");
}

Deno.test(`untrusted fuzz: ${CASES} mutated files over 6 loaders + large headers (seed ${SEED.toString(16)}), only clean loads or named Errors`, async () => {
  const root = await Deno.makeTempDir({ prefix: "knot_untrusted_fuzz_" });
  const t0 = performance.now();
  try {
    const kinds = await setup(root);
    const protoBefore = protoSnapshot();
    const counts = new Map(kinds.map((k) => [k.name, { loaded: 0, refused: 0 }]));
    const bad = new Map<string, string[]>(); // disallowed category → examples
    const flag = (category: string, example: string) => {
      const list = bad.get(category) ?? [];
      list.push(example);
      bad.set(category, list);
    };
    let peakGrowth = 0, slowest = 0, slowestCpu = 0;
    for (let i = 0; i < CASES; i++) {
      // Every 100th case a megabyte header; the rest round-robin over the six loaders.
      const kind = i % 100 === 99 ? kinds[0] : kinds[1 + (i % (kinds.length - 1))];
      const dir = `${root}/case_${kind.name}`;
      await Deno.mkdir(dir, { recursive: true });
      for await (const e of Deno.readDir(dir)) await Deno.remove(`${dir}/${e.name}`);
      const bytes = await kind.write(dir);
      const live = liveBuffers();
      const base = resetPeak();
      const start = performance.now(), cpuStart = cpuMs();
      let outcome: "loaded" | "refused" = "loaded";
      try {
        await kind.load(dir);
      } catch (e) {
        outcome = "refused";
        const label = `case ${i} (${kind.name})`;
        if (!(e instanceof Error)) flag("not an Error", `${label}: ${e}`);
        else if (e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError) {
          flag(e.constructor.name, `${label}: ${e.message}\n${e.stack?.split("\n").slice(1, 6).join(" | ")}`);
        } else if (!e.message.includes(dir) || e.message.length < dir.length + 15) {
          flag("does not name the file and problem", `${label}: ${e.message}`);
        }
      }
      const ms = performance.now() - start, cpu = cpuStart === null ? null : cpuMs()! - cpuStart;
      slowest = Math.max(slowest, ms);
      slowestCpu = Math.max(slowestCpu, cpu ?? 0);
      if ((cpu ?? ms) > TIME_LIMIT_MS || ms > HANG_LIMIT_MS) {
        flag("over 2 s", `case ${i} (${kind.name}): ${ms.toFixed(0)} ms wall, ${cpu ?? "?"} ms CPU`);
      }
      if (base !== null) {
        const growth = procStatus(HWM) - base;
        peakGrowth = Math.max(peakGrowth, growth);
        if (growth > MEMORY_MULTIPLE * bytes + MEMORY_FLOOR) {
          flag("memory", `case ${i} (${kind.name}): peak +${(growth / 2 ** 20).toFixed(1)} MiB for ${bytes} bytes`);
        }
      }
      if (liveBuffers() !== live) flag("leaked buffers", `case ${i} (${kind.name}): ${liveBuffers() - live} buffers`);
      if (protoSnapshot() !== protoBefore) {
        flag("prototype polluted", `case ${i} (${kind.name})`);
        break;
      }
      counts.get(kind.name)![outcome]++;
    }
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(
      `untrusted fuzz: ${CASES} cases, seed ${SEED.toString(16)}, ${seconds} s (slowest load ${
        slowest.toFixed(0)
      } ms wall, ${slowestCpu} ms CPU; peak RSS growth ${(peakGrowth / 2 ** 20).toFixed(1)} MiB)`,
    );
    for (const [name, c] of counts) {
      console.log(`  ${name.padEnd(20)} loaded ${c.loaded}, refused with a named Error ${c.refused}`);
    }
    const disallowed = [...bad].map(([cat, ex]) => `${cat}: ${ex.length}\n    ${ex.slice(0, 3).join("\n    ")}`);
    console.log(`  disallowed outcomes: ${disallowed.length ? "\n  " + disallowed.join("\n  ") : "none"}`);
    assert.equal(disallowed.length, 0, disallowed.join("\n"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
