/// <reference lib="dom" />
/**
 * The browser demo (examples/web/index.html): load a small Llama (the
 * built-in tiny model, or files the user picks), fine-tune it with TL6 on
 * WebGPU (or, where there is none, on the CPU backend, which the page says),
 * draw the loss curve live, show the trainable parameters, generate text
 * before and after, and download the adapter.
 *
 * Built by `deno task bundle` into dist/app.js, where the import of web.ts
 * becomes an import of the bundle beside it (dist/knot.js).
 *
 * URL parameters: `?model=DIR/` (a Hugging Face Llama directory URL, default
 * `../tiny/`), `?steps=N`, `?backend=cpu` (skip WebGPU).
 *
 * For tests, `globalThis.knotDemo` mirrors the page's state (status, backend,
 * losses, generated texts) and `<body data-status>` the current phase.
 * @module
 */
import {
  dispose,
  io,
  llama,
  matmul,
  maximum,
  mul,
  nn,
  optim,
  peft,
  plot,
  random,
  scope,
  setBackend,
  sum,
  tensor,
  train,
} from "../../web.ts";

// ---------------------------------------------------------------- state

interface Model {
  config: llama.LlamaConfig;
  params: llama.LlamaParams;
  tok: io.Tokenizer;
  /** Where it came from (shown, and recorded in adapter.json). */
  source: string;
}

interface Adapter {
  plan: peft.Plan;
  trainable: peft.PlanTree<llama.LlamaParams>;
  frozen: peft.PlanTree<llama.LlamaParams>;
}

/** A training example before tokenisation: the loss is taken on `answer`. */
interface TextPair {
  prompt: string;
  answer: string;
}

/** What tests (and the curious, in the console) can read. */
const demo = {
  status: "starting",
  /** Where the loaded model came from ("" until one is loaded). */
  model: "",
  backend: "",
  /** Set when WebGPU was wanted but could not be had: why. */
  fallback: "",
  losses: [] as number[],
  base: "",
  tuned: "",
  error: "",
  trainSeconds: 0,
};
(globalThis as unknown as { knotDemo: typeof demo }).knotDemo = demo;

let model: Model | null = null;
let adapter: Adapter | null = null;
let data: { pairs: TextPair[]; source: string } | null = null;
/** Training data chosen together with model files (overrides the fetched default). */
let userData: { pairs: TextPair[]; source: string } | null = null;

const params = new URLSearchParams(location.search);
const MODEL_DIR = params.get("model") ?? "../tiny/";
const SEQ_LEN = 48;
const SEED = 0;

// ---------------------------------------------------------------- DOM helpers

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: no element #${id}`);
  return el as T;
}

function setStatus(s: string): void {
  demo.status = s;
  document.body.dataset.status = s;
}

function banner(kind: "info" | "ok" | "warn", text: string): void {
  const el = $("backend");
  el.className = `banner ${kind}`;
  el.textContent = text;
}

function showError(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  console.error(e);
  demo.error = msg;
  const el = $("error");
  el.textContent = `Error: ${msg}`;
  el.hidden = false;
}

const BUTTONS = ["load-builtin", "generate", "train", "download"];

/** Runs `fn` with every button disabled, then re-enables those that make sense; errors are shown on the page. */
async function busy(status: string, fn: () => Promise<void>): Promise<void> {
  for (const id of BUTTONS) $<HTMLButtonElement>(id).disabled = true;
  $<HTMLInputElement>("files").disabled = true;
  $("error").hidden = true;
  demo.error = "";
  setStatus(status);
  try {
    await fn();
    setStatus("ready");
  } catch (e) {
    showError(e);
    setStatus("error");
  } finally {
    $<HTMLButtonElement>("load-builtin").disabled = false;
    $<HTMLInputElement>("files").disabled = false;
    $<HTMLButtonElement>("generate").disabled = !model;
    $<HTMLButtonElement>("train").disabled = !model || !data;
    $<HTMLButtonElement>("download").disabled = !adapter;
  }
}

function intInput(id: string, min: number): number {
  const v = Number($<HTMLInputElement>(id).value);
  if (!Number.isInteger(v) || v < min) {
    throw new Error(`${id} must be an integer >= ${min}, got "${$<HTMLInputElement>(id).value}"`);
  }
  return v;
}

const nextFrame = () => new Promise<void>((r) => setTimeout(r, 0));

// ---------------------------------------------------------------- backend

async function chooseBackend(): Promise<void> {
  if (params.get("backend") === "cpu") {
    await setBackend("cpu");
    demo.backend = "cpu";
    banner("info", "Running on the CPU backend (WebAssembly SIMD), as asked by ?backend=cpu.");
  } else {
    let stage = "adapter";
    try {
      const b = await setBackend("webgpu");
      stage = "self-test";
      await selfTest();
      const desc = (b as { description?: string }).description;
      demo.backend = "webgpu";
      banner("ok", `WebGPU is available${desc ? ` (${desc})` : ""}: training runs on the GPU.`);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      demo.fallback = why;
      await setBackend("cpu");
      demo.backend = "cpu";
      const reason = stage === "self-test"
        ? "a WebGPU adapter was found, but knot's WebGPU kernels failed on it"
        : !("gpu" in navigator)
        ? "this browser has no navigator.gpu"
        : "no WebGPU adapter could be had";
      banner(
        "warn",
        `WebGPU is not available (${reason}), so knot falls back to the CPU backend ` +
          `(WebAssembly SIMD, one thread): it works, only slower.\n${why.split("\n")[0]}`,
      );
    }
  }
  $("footer-backend").textContent = demo.backend;
  document.body.dataset.backend = demo.backend;
}

/** A few ops on the current backend, read back: catches a backend that initialises but cannot run kernels. */
async function selfTest(): Promise<void> {
  const got = await scope(async () => {
    const x = tensor([1, -2, 3, 4], [2, 2]);
    const y = sum(mul(nn.silu(matmul(x, x)), maximum(x, 0)));
    return await y.item();
  });
  // x·x = [[-5, -10], [15, 10]]; max(x, 0) = [[1, 0], [3, 4]].
  const s = (v: number) => v / (1 + Math.exp(-v));
  const want = s(-5) * 1 + s(-10) * 0 + s(15) * 3 + s(10) * 4;
  if (!(Math.abs(got - want) < 1e-3 * Math.abs(want))) throw new Error(`self-test: expected ${want}, got ${got}`);
}

// ---------------------------------------------------------------- loading

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function fetchJson(url: string, optional = false): Promise<Record<string, unknown> | null> {
  const r = await fetch(url);
  if (!r.ok) {
    if (optional && r.status === 404) return null;
    throw new Error(`GET ${url}: ${r.status} ${r.statusText}`);
  }
  return await r.json();
}

function makeModel(
  config: unknown,
  weights: Uint8Array,
  tokJson: object,
  tokConfig: Record<string, unknown> | null,
  names: { weights: string; tokenizer: string },
  source: string,
): Model {
  const tok = new io.Tokenizer(tokJson, tokConfig ?? {}, names.tokenizer);
  const { config: c, params: p } = io.llamaFromBytes(config, weights, names.weights);
  // The new model is in: release the old one and its adapter.
  dropAdapter();
  if (model) dispose(model.params);
  model = null;
  demo.model = source;
  return { config: c, params: p, tok, source };
}

/**
 * Training rows → (prompt, answer) pairs, in knot's one JSONL convention (train/tasks/jsonl.ts):
 * `{"prompt": ..., "answer": ...}`, the answer being the exact continuation trained on.
 */
function pairsFromRows(rows: Record<string, unknown>[], where: string): TextPair[] {
  return rows.map((r, i) => {
    if (typeof r.prompt === "string" && typeof r.answer === "string") return { prompt: r.prompt, answer: r.answer };
    const hint = "completion" in r ? ' (rename "completion" to "answer")' : "";
    throw new Error(`${where}:${i + 1}: expected string fields "prompt" and "answer"${hint}`);
  });
}

function parseJsonl(text: string, where: string): Record<string, unknown>[] {
  return text.split("\n").filter((l) => l.trim()).map((l, i) => {
    try {
      return JSON.parse(l);
    } catch (e) {
      throw new Error(`${where}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
  });
}

/** A little text to train on when no task data is around (TinyStories-like, for story models). */
const BUILTIN_TEXT = [
  "Once upon a time, there was a little cat named Tom. Tom loved to play with his red ball.",
  "One day, Tom saw a big dog in the park. The dog was kind and wanted to play.",
  "Tom and the dog played with the red ball all day. They were very happy.",
  "Lily had a blue kite. She ran in the park and the kite flew high in the sky.",
  'The sun was warm and the birds sang. Lily smiled and said, "I love my kite!"',
  "Ben liked to eat apples. Every morning his mom gave him a big red apple.",
  'One day, Ben shared his apple with his friend Sam. Sam said, "Thank you, Ben!"',
  "At night, Tom the cat slept in his warm bed. He dreamed about his red ball.",
];

async function loadTrainingData(dir: string): Promise<void> {
  if (userData) {
    data = userData;
    return;
  }
  const url = `${dir}task/train.jsonl`;
  const r = await fetch(url);
  if (r.ok) {
    data = {
      pairs: pairsFromRows(parseJsonl(await r.text(), url), url),
      source: `${url} (the built-in task's train split)`,
    };
  } else {
    data = { pairs: BUILTIN_TEXT.map((t) => ({ prompt: "", answer: t })), source: "a few built-in sentences" };
  }
}

async function loadFromUrl(dir: string): Promise<void> {
  const base = dir.endsWith("/") ? dir : `${dir}/`;
  const [config, weights, tokJson, tokConfig] = await Promise.all([
    fetchJson(`${base}config.json`),
    fetchBytes(`${base}model.safetensors`),
    fetchJson(`${base}tokenizer.json`),
    fetchJson(`${base}tokenizer_config.json`, true),
  ]);
  const label = base === "../tiny/" ? "the built-in tiny model (examples/tiny)" : base;
  const names = { weights: `${base}model.safetensors`, tokenizer: `${base}tokenizer.json` };
  model = makeModel(config, weights, tokJson!, tokConfig, names, label);
  await loadTrainingData(base);
  modelLoaded();
}

async function fileJson(f: File): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await f.text());
  } catch (e) {
    throw new Error(`${f.name}: invalid JSON (${(e as Error).message})`);
  }
}

async function loadFromFiles(files: FileList): Promise<void> {
  const byName = new Map<string, File>();
  for (const f of files) byName.set(f.name, f);
  const pick = (test: (n: string) => boolean) => [...byName.values()].find((f) => test(f.name));
  const configFile = byName.get("config.json");
  const weightsFile = pick((n) => n.endsWith(".safetensors"));
  const tokFile = byName.get("tokenizer.json");
  const missing = [!configFile && "config.json", !weightsFile && "*.safetensors", !tokFile && "tokenizer.json"]
    .filter(Boolean);
  if (missing.length) throw new Error(`choose the model's files together: missing ${missing.join(", ")}`);
  const tokConfigFile = byName.get("tokenizer_config.json");
  const dataFile = pick((n) => n.endsWith(".jsonl") || n.endsWith(".txt"));
  if (dataFile) {
    const text = await dataFile.text();
    const pairs = dataFile.name.endsWith(".txt")
      ? text.split("\n").filter((l) => l.trim()).map((l) => ({ prompt: "", answer: l.trim() }))
      : pairsFromRows(parseJsonl(text, dataFile.name), dataFile.name);
    if (!pairs.length) throw new Error(`${dataFile.name}: no training examples`);
    userData = { pairs, source: `${dataFile.name} (chosen)` };
  } else userData = null;
  model = makeModel(
    await fileJson(configFile!),
    new Uint8Array(await weightsFile!.arrayBuffer()),
    await fileJson(tokFile!),
    tokConfigFile ? await fileJson(tokConfigFile) : null,
    { weights: weightsFile!.name, tokenizer: tokFile!.name },
    `the chosen files (${[...byName.keys()].join(", ")})`,
  );
  if (!userData) {
    data = { pairs: BUILTIN_TEXT.map((t) => ({ prompt: "", answer: t })), source: "a few built-in sentences" };
  } else data = userData;
  modelLoaded();
}

function modelLoaded(): void {
  const m = model!;
  const c = m.config;
  const n = countParams(m.params);
  $("model-info").innerHTML = "";
  $("model-info").append(
    `Loaded ${m.source}: ${c.numLayers} layers, d=${c.hiddenSize}, ${c.numHeads} heads (${c.numKvHeads} KV), ` +
      `vocabulary ${c.vocabSize}, ${n.toLocaleString("en-US")} parameters.`,
  );
  $("model-info").className = "";
  const first = data!.pairs[0];
  const promptBox = $<HTMLInputElement>("prompt");
  promptBox.value = first.prompt || first.answer.split(" ").slice(0, 4).join(" ");
  $("data-info").textContent = `Training data: ${data!.pairs.length} examples from ${data!.source}; ` +
    `sequences of ${SEQ_LEN} tokens; the loss is taken on the answers.`;
  $("out-base").textContent = "—";
  $("out-tuned").textContent = "(train first)";
}

function countParams(t: unknown): number {
  if (!t || typeof t !== "object") return 0;
  if ("size" in t && "shape" in t) return (t as { size: number }).size;
  return Object.values(t).reduce((n: number, v) => n + countParams(v), 0);
}

function dropAdapter(): void {
  if (!adapter) return;
  // Only the adapter's own leaves: frozen.base is the base model.
  dispose([adapter.trainable.sites, adapter.trainable.tied, adapter.frozen.sites, adapter.frozen.tied]);
  adapter = null;
}

// ---------------------------------------------------------------- generation

async function generateInto(params: llama.LlamaParams, prompt: string, out: HTMLElement): Promise<string> {
  const m = model!;
  const ids = m.tok.encode(prompt);
  const got: number[] = [];
  out.classList.remove("dim");
  out.textContent = "…";
  await scope(async () => {
    for await (const id of llama.generate(params, m.config, ids, { maxTokens: 24 })) {
      got.push(id);
      out.textContent = m.tok.decode(got) || "…";
      if (got.length % 4 === 0) await nextFrame();
    }
  });
  const text = m.tok.decode(got);
  out.textContent = text || "(the model ended the text at once)";
  return text;
}

async function runGenerate(): Promise<void> {
  const prompt = $<HTMLInputElement>("prompt").value;
  if (!prompt.trim()) throw new Error("type a prompt first");
  demo.base = await generateInto(model!.params, prompt, $("out-base"));
  if (adapter) {
    const a = adapter;
    demo.tuned = await generateInto(a.plan.build(a.trainable, a.frozen), prompt, $("out-tuned"));
  }
}

// ---------------------------------------------------------------- training

function drawChart(losses: number[]): void {
  const pts = losses.map((l, i) => [i + 1, l] as [number, number]);
  $("chart").innerHTML = plot.lineChart(
    [
      { name: "loss", points: pts },
      { name: "EMA", points: plot.smooth(pts, 0.2) },
    ],
    { title: "TL6 training loss", xLabel: "step", yLabel: "cross-entropy", width: 640, height: 340 },
  );
}

async function runTrain(): Promise<void> {
  const m = model!;
  const steps = intInput("steps", 1), rank = intInput("rank", 1), batchSize = intInput("batch", 1);
  const lr = Number($<HTMLInputElement>("lr").value);
  if (!(lr > 0)) throw new Error(`learning rate must be positive, got "${$<HTMLInputElement>("lr").value}"`);
  dropAdapter();
  const examples = data!.pairs.map((p) => train.tokenizePair(m.tok, p.prompt, p.answer));
  const plan = peft.preset("tl6", { rank });
  const { trainable, frozen } = plan.init(m.params, random.key(SEED));
  const s = peft.summary(plan, trainable, frozen);
  $("summary").textContent = s.toString();
  $("summary").classList.remove("dim");
  const schedule = optim.schedules.cosineWithWarmup(lr, Math.max(1, Math.round(steps / 10)), steps, lr / 100);
  const optimizer = optim.chain(
    optim.clipByGlobalNorm(1),
    optim.adamw(schedule, { b1: 0.9, b2: 0.98, weightDecay: 0.01 }),
  );
  const step = train.trainStep(train.planLoss(plan, m.config), optimizer);
  let state = { trainable, opt: optimizer.init(trainable) };
  const losses: number[] = [];
  demo.losses = losses;
  let order: number[] = [];
  let epoch = 0;
  const started = performance.now();
  let tokens = 0;
  try {
    for (let i = 0; i < steps; i++) {
      const idx: number[] = [];
      while (idx.length < Math.min(batchSize, examples.length)) {
        if (!order.length) order = train.epochOrder(examples.length, SEED, epoch++);
        idx.push(order.pop()!);
      }
      const batch = train.makeBatch(idx.map((j) => examples[j]), SEQ_LEN, 0);
      const out = step(state, frozen, batch);
      state = out.state;
      const loss = await out.loss.item();
      out.loss.dispose();
      dispose([batch.tokens, batch.positions, batch.targets]);
      tokens += batch.tokensSeen;
      if (!Number.isFinite(loss)) {
        throw new Error(`the loss became ${loss} at step ${i + 1}: try a lower learning rate`);
      }
      losses.push(loss);
      const sec = (performance.now() - started) / 1000;
      $("progress").textContent = `step ${i + 1}/${steps} · loss ${loss.toFixed(4)} · ${
        ((i + 1) / sec).toFixed(1)
      } steps/s · ${Math.round(tokens / sec).toLocaleString("en-US")} tokens/s · ${demo.backend}`;
      $("progress").classList.remove("dim");
      drawChart(losses);
      await nextFrame();
    }
  } finally {
    demo.trainSeconds = (performance.now() - started) / 1000;
    dispose(state.opt);
  }
  adapter = { plan, trainable: state.trainable, frozen };
  $("progress").textContent += ` · done in ${demo.trainSeconds.toFixed(1)} s`;
  await runGenerate();
}

// ---------------------------------------------------------------- download

function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function runDownload(): Promise<void> {
  const a = adapter!;
  const { json, safetensors } = await io.adapterToBytes(a.plan, a.trainable, a.frozen, { path: model!.source });
  saveBlob(new Blob([safetensors as BlobPart], { type: "application/octet-stream" }), "adapter.safetensors");
  await new Promise((r) => setTimeout(r, 300)); // browsers drop a second download started in the same tick
  saveBlob(new Blob([json], { type: "application/json" }), "adapter.json");
}

// ---------------------------------------------------------------- wiring

async function main(): Promise<void> {
  const steps = params.get("steps");
  if (steps) $<HTMLInputElement>("steps").value = steps;
  $("load-builtin").addEventListener("click", () => busy("loading", () => loadFromUrl(MODEL_DIR)));
  $<HTMLInputElement>("files").addEventListener("change", (e) => {
    const files = (e.target as HTMLInputElement).files;
    if (files?.length) busy("loading", () => loadFromFiles(files));
  });
  $("generate").addEventListener("click", () => busy("generating", runGenerate));
  $("train").addEventListener("click", () => busy("training", runTrain));
  $("download").addEventListener("click", () => busy("downloading", runDownload));
  await busy("loading", async () => {
    await chooseBackend();
    try {
      await loadFromUrl(MODEL_DIR);
    } catch (e) {
      $("model-info").textContent = `The built-in model could not be loaded from ${MODEL_DIR} (${
        (e as Error).message
      }). Choose a model's files instead.`;
    }
  });
}

main();
