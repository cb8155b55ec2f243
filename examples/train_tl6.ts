/**
 * Fine-tune a Llama with Tied-LoRA (TL6 by default), compare with LoRA, and
 * report the task metric before and after.
 *
 *   deno run -A examples/train_tl6.ts                 # built-in model and task, < 5 min on 2 cores
 *   deno run -A examples/train_tl6.ts --model ../shared/models/stories260K --task multi30k --steps 300
 *
 * Writes to --out, per method: the adapter (adapter.safetensors + adapter.json),
 * its PEFT LoRA export (peft/), metrics.jsonl, loss.svg and a checkpoint/ that
 * --resume continues from (Ctrl-C saves one).
 */
import { parseArgs } from "node:util";
import { loadLlama, loadTokenizer, PRESET_NAMES, setBackend } from "../mod.ts";
import { finetune, type FinetuneResult, formatMetric, prepareTask, taskMetric } from "../train/finetune.ts";
import { meanLoss } from "../train/evaluate.ts";
import { lmLoss } from "../train/loss.ts";
import { getTask, type Task, taskNames } from "../train/tasks/index.ts";
import { builtinTask } from "../train/tasks/builtin.ts";

const HELP = `Fine-tune with Tied-LoRA and compare with LoRA.

usage: deno run -A examples/train_tl6.ts [flags]

  --model DIR        Hugging Face Llama directory (config.json, model.safetensors, tokenizer.json)
                     (default: the built-in tiny model in examples/tiny)
  --task NAME        builtin | ${taskNames.join(" | ")} (default: builtin)
  --data PATH        task data file or directory (default: the task's own: examples/tiny/task for
                     builtin, ../shared/data/<task> for the paper's tasks)
  --method NAME      ${PRESET_NAMES.join(" | ")} (default: tl6)
  --compare LIST     methods to compare with, comma-separated, or "none" (default: lora)
  --rank N           adapter rank r (default: 8)
  --lr X             peak learning rate for --method (default: 1e-2 on builtin, else 3e-3)
  --compare-lr X     peak learning rate for the --compare methods (default: 3e-3)
  --steps N          training steps (default: 150 on builtin, else 300)
  --batch N          examples per step (default: 16)
  --seq N            tokens per example (default: 16 on builtin, else 128)
  --warmup N         warm-up steps of the cosine schedule (default: 10% of --steps)
  --eval-every N     validation loss every N steps (default: 25)
  --eval-limit N     eval examples scored with the task metric (default: 200)
  --patience N       early stopping after N evaluations without improvement (default: off)
  --backend NAME     cpu | webgpu (default: cpu)
  --out DIR          output directory (default: out/train_tl6)
  --resume           continue each method from its checkpoint in --out
  --seed N           seed of initialisation and data order (default: 0)
  -h, --help         this help
`;

const { values: flags } = parseArgs({
  options: {
    model: { type: "string" },
    task: { type: "string", default: "builtin" },
    data: { type: "string" },
    method: { type: "string", default: "tl6" },
    compare: { type: "string", default: "lora" },
    rank: { type: "string", default: "8" },
    lr: { type: "string" },
    "compare-lr": { type: "string" },
    steps: { type: "string" },
    batch: { type: "string", default: "16" },
    seq: { type: "string" },
    warmup: { type: "string" },
    "eval-every": { type: "string", default: "25" },
    "eval-limit": { type: "string", default: "200" },
    patience: { type: "string" },
    backend: { type: "string", default: "cpu" },
    out: { type: "string", default: "out/train_tl6" },
    resume: { type: "boolean", default: false },
    seed: { type: "string", default: "0" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});
if (flags.help) {
  console.log(HELP);
  Deno.exit(0);
}

function int(name: string, v: string | undefined, min = 0): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
  return n;
}
function num(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!(n > 0)) throw new Error(`--${name} must be a positive number, got ${v}`);
  return n;
}

// The built-in task's examples are short (at most 15 tokens) and Tied-LoRA likes a higher rate there.
const builtin = flags.task === "builtin";
const steps = int("steps", flags.steps ?? (builtin ? "150" : "300"), 1);
const batchSize = int("batch", flags.batch, 1), seqLen = int("seq", flags.seq ?? (builtin ? "16" : "128"), 2);
const rank = int("rank", flags.rank, 1),
  seed = int("seed", flags.seed),
  evalEvery = int("eval-every", flags["eval-every"]);
const evalLimit = int("eval-limit", flags["eval-limit"], 1), lr = num("lr", flags.lr ?? (builtin ? "1e-2" : "3e-3"));
const compareLr = num("compare-lr", flags["compare-lr"] ?? "3e-3");
const warmup = flags.warmup !== undefined ? int("warmup", flags.warmup) : Math.round(steps / 10);
const patience = flags.patience !== undefined ? int("patience", flags.patience, 1) : undefined;
const methods = [
  flags.method!,
  ...(flags.compare === "none" ? [] : flags.compare!.split(",").map((s) => s.trim()).filter(Boolean)),
];
for (const m of methods) {
  if (!PRESET_NAMES.includes(m)) throw new Error(`unknown method "${m}"; known: ${PRESET_NAMES.join(", ")}`);
}

await setBackend(flags.backend!);
const modelDir = flags.model ?? new URL("./tiny", import.meta.url).pathname;
const task: Task = flags.task === "builtin" ? (builtinTask as unknown as Task) : getTask(flags.task!);
console.log(`knot · ${flags.backend} · model ${modelDir} · task ${task.name}`);

const { config, params } = await loadLlama(modelDir);
const tok = await loadTokenizer(modelDir);
const data = await prepareTask(task, tok, { data: flags.data, seqLen, evalLimit, valBatchSize: batchSize });
console.log(`${data.train.length} training examples; metric on ${data.metricExamples.length} eval examples`);

const t0 = performance.now();
const baseMetric = await taskMetric(params, config, tok, data);
const baseValLoss = await meanLoss((b) => lmLoss(params, config, b), data.valBatches);
console.log(
  `base model: ${formatMetric(baseMetric)} · validation loss ${baseValLoss.toFixed(4)}  [${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s]`,
);

const controller = new AbortController();
Deno.addSignalListener("SIGINT", () => {
  if (controller.signal.aborted) Deno.exit(130);
  console.log("\ninterrupted: saving a checkpoint (Ctrl-C again to quit now)");
  controller.abort();
});

const results: FinetuneResult[] = [];
for (const method of methods) {
  const r = await finetune(config, params, tok, data, {
    method,
    rank,
    lr: method === flags.method ? lr : compareLr,
    steps,
    batchSize,
    warmup,
    evalEvery,
    seed,
    patience,
    outDir: `${flags.out}/${method}`,
    resume: flags.resume,
    signal: controller.signal,
    modelPath: modelDir,
  });
  if (r.stoppedBy === "interrupted") {
    console.log(`stopped at step ${r.steps}; continue with --resume`);
    Deno.exit(130);
  }
  if (r.stoppedBy === "nan") Deno.exit(1);
  results.push(r);
}

console.log(`\n== ${task.name}: ${config.numLayers} layers, d=${config.hiddenSize}, r=${rank}, ${steps} steps ==`);
const rows = [
  ["base", "0", "-", baseMetric.value.toFixed(2), baseValLoss.toFixed(4), "-"],
  ...results.map((r) => [
    r.method,
    r.trainable.toLocaleString("en-US"),
    r.percentOfLora.toFixed(2),
    r.metric!.value.toFixed(2),
    r.valLoss.toFixed(4),
    r.seconds.toFixed(1),
  ]),
];
const head = ["model", "trainable", "P% of LoRA", baseMetric.name, "val loss", "train s"];
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
console.log(
  [head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ")).join("\n"),
);
console.log(`outputs in ${flags.out}/ · total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
Deno.exit(0);
