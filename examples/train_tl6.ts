/**
 * Fine-tune a Llama with Tied-LoRA (TL6 by default), compare with LoRA, and
 * report the task metric before and after.
 *
 *   deno run -A examples/train_tl6.ts                 # built-in model and task, < 5 min on 2 cores
 *   deno run -A examples/train_tl6.ts --model ../shared/models/stories260K --task multi30k --steps 300
 *
 *   deno run -A examples/train_tl6.ts --evaluate out/train_tl6/tl6   # score a saved adapter, no training
 *
 * Writes to --out, per method, a run directory (see train/run.ts): run.json
 * (settings, code version, data fingerprint, status, result), the adapter
 * (adapter.safetensors + adapter.json), its PEFT LoRA export (peft/),
 * metrics.jsonl, loss.svg and a checkpoint/ that --resume continues from
 * (Ctrl-C saves one).
 */
import { loadLlama, loadTokenizer } from "../io/mod.ts";
import { PRESET_NAMES } from "../peft/mod.ts";
import { setBackend } from "../mod.ts";
import {
  finetune,
  type FinetuneOptions,
  type FinetuneResult,
  formatMetric,
  prepareTask,
  runSettings,
  taskMetric,
} from "../apps/mod.ts";
import { meanLoss } from "../apps/mod.ts";
import { lmLoss } from "../train/mod.ts";
import { describeRun, readRun, resumeRun } from "../apps/mod.ts";
import {
  adapterFlag,
  intFlag,
  listFlag,
  methodFlag,
  parseFlags,
  positiveFlag,
  runMain,
  TASK_NAMES,
  taskFlag,
  UsageError,
} from "./cli.ts";

const HELP = `Fine-tune with Tied-LoRA and compare with LoRA.

usage: deno run -A examples/train_tl6.ts [flags]

  --model DIR        Hugging Face Llama directory (config.json, model.safetensors, tokenizer.json)
                     (default: the built-in tiny model in examples/tiny)
  --task NAME        ${TASK_NAMES.join(" | ")} (default: builtin)
  --data PATH        task data file or directory (default: the task's own: examples/tiny/task for
                     builtin, ../shared/data/<task> for the paper's tasks); for jsonl, rows
                     {"prompt": ..., "answer": ...} in DIR/train.jsonl + DIR/eval.jsonl, or one file
                     (then split: a row goes to eval when a hash of its prompt is 0 mod 10, ~10%)
  --method NAME      ${PRESET_NAMES.join(" | ")}, any case (default: tl6)
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
  --checkpoint-every N  checkpoint every N steps (default: max(--eval-every, 25)); also on Ctrl-C and at the end
  --out DIR          output directory, one run directory per method (default: out/train_tl6)
  --resume           continue the run in --out from each method's checkpoint; the settings must match
                     the recorded ones (run.json), except --eval-limit, --checkpoint-every, --data
  --overwrite        replace a run already in --out (without it, a new run there is refused)
  --evaluate DIR     no training: score the adapter in DIR (knot adapter/, PEFT peft/, or a run
                     directory of this script) and the base model on the task, then exit
  --seed N           seed of initialisation and data order (default: 0)
  -h, --help         this help
`;

async function main(args: string[]): Promise<number> {
  const flags = parseFlags(args, {
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
    "checkpoint-every": { type: "string" },
    backend: { type: "string", default: "cpu" },
    out: { type: "string", default: "out/train_tl6" },
    resume: { type: "boolean", default: false },
    overwrite: { type: "boolean", default: false },
    evaluate: { type: "string" },
    seed: { type: "string", default: "0" },
    help: { type: "boolean", short: "h" },
  });
  if (flags.help) {
    console.log(HELP);
    return 0;
  }

  const task = taskFlag(flags.task!);
  // The built-in task's examples are short (at most 15 tokens) and Tied-LoRA likes a higher rate there.
  const builtin = task.name === "builtin";
  const steps = intFlag("steps", flags.steps ?? (builtin ? "150" : "300"), 1);
  const batchSize = intFlag("batch", flags.batch, 1), seqLen = intFlag("seq", flags.seq ?? (builtin ? "16" : "128"), 2);
  const rank = intFlag("rank", flags.rank, 1), seed = intFlag("seed", flags.seed);
  const evalEvery = intFlag("eval-every", flags["eval-every"]);
  const evalLimit = intFlag("eval-limit", flags["eval-limit"], 1);
  const lr = positiveFlag("lr", flags.lr ?? (builtin ? "1e-2" : "3e-3"));
  const compareLr = positiveFlag("compare-lr", flags["compare-lr"] ?? "3e-3");
  const warmup = flags.warmup !== undefined ? intFlag("warmup", flags.warmup) : Math.round(steps / 10);
  const patience = flags.patience !== undefined ? intFlag("patience", flags.patience, 1) : undefined;
  const checkpointEvery = flags["checkpoint-every"] !== undefined
    ? intFlag("checkpoint-every", flags["checkpoint-every"], 1)
    : undefined;
  const method = methodFlag(flags.method!);
  const methods = [
    method,
    ...(flags.compare === "none" ? [] : listFlag(flags.compare!).map((m) => methodFlag(m, "compare"))),
  ];
  if (new Set(methods).size !== methods.length) throw new UsageError(`a method is listed twice: ${methods.join(", ")}`);
  if (flags.resume && flags.overwrite) throw new UsageError("give --resume or --overwrite, not both");
  const out = flags.out!.replace(/\/+$/, "") || "/";
  const runDir = (m: string) => `${out}/${m}`;

  // A new run never replaces a recorded one silently; --resume needs one to continue.
  const evaluateOnly = flags.evaluate !== undefined;
  const recorded = new Map<string, string>();
  for (const m of methods) {
    const r = await readRun(runDir(m));
    if (r) recorded.set(m, `${m}: ${describeRun(r)}`);
  }
  if (!evaluateOnly && !flags.resume && !flags.overwrite && recorded.size) {
    throw new UsageError(
      `--out ${out} already holds a run (${[...recorded.values()].join("; ")}); pass --resume to continue it, ` +
        `--overwrite to replace it, or --out DIR for a new one`,
    );
  }
  if (flags.resume && !recorded.size) {
    throw new UsageError(
      `--resume: nothing to resume in ${out} (no run.json in ${methods.map(runDir).join(", ")}); ` +
        `start without --resume`,
    );
  }

  await setBackend(flags.backend!);
  const modelDir = flags.model ?? new URL("./tiny", import.meta.url).pathname;
  console.log(`knot · ${flags.backend} · model ${modelDir} · task ${task.name}`);

  const { config, params } = await loadLlama(modelDir);
  const tok = await loadTokenizer(modelDir);
  const data = await prepareTask(task, tok, { data: flags.data, seqLen, evalLimit, valBatchSize: batchSize });
  console.log(
    `${data.train.length} training examples, ${data.valBatches.length} validation batches from the eval split; ` +
      `metric on ${data.metricExamples.length} eval examples`,
  );
  if (data.note) console.log(data.note);

  const options = (m: string): FinetuneOptions => ({
    method: m,
    rank,
    lr: m === method ? lr : compareLr,
    steps,
    batchSize,
    warmup,
    evalEvery,
    seed,
    patience,
    checkpointEvery,
    outDir: runDir(m),
    resume: flags.resume && recorded.has(m),
    overwrite: flags.overwrite,
    modelPath: modelDir,
    settings: { data: flags.data ?? null },
  });
  // Check every recorded run against these settings before spending time on any of them.
  if (flags.resume) {
    for (const m of recorded.keys()) await resumeRun(runDir(m), runSettings(data, options(m)), data.fingerprint);
  }

  const t0 = performance.now();
  const baseMetric = await taskMetric(params, config, tok, data);
  const baseValLoss = await meanLoss((b) => lmLoss(params, config, b), data.valBatches);
  console.log(
    `base model: ${formatMetric(baseMetric)} · validation loss ${baseValLoss.toFixed(4)}  [${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s]`,
  );
  const head = ["model", "trainable", "P% of LoRA", baseMetric.name, "val loss", "train s"];
  const baseRow = ["base", "0", "-", baseMetric.value.toFixed(2), baseValLoss.toFixed(4), "-"];

  if (evaluateOnly) {
    const a = await adapterFlag(flags.evaluate!, params);
    const metric = await taskMetric(a.params, config, tok, data);
    const valLoss = await meanLoss((b) => lmLoss(a.params, config, b), data.valBatches);
    console.log(`${a.description}: ${formatMetric(metric)} · validation loss ${valLoss.toFixed(4)}`);
    printTable(head, [baseRow, ["adapter", "-", "-", metric.value.toFixed(2), valLoss.toFixed(4), "-"]]);
    return 0;
  }

  const controller = new AbortController();
  Deno.addSignalListener("SIGINT", () => {
    if (controller.signal.aborted) Deno.exit(130);
    console.log("\ninterrupted: saving a checkpoint (Ctrl-C again to quit now)");
    controller.abort();
  });

  const results: FinetuneResult[] = [];
  for (const m of methods) {
    if (flags.resume && !recorded.has(m)) console.log(`${m}: not started before; starting from step 0`);
    const r = await finetune(config, params, tok, data, { ...options(m), signal: controller.signal });
    if (r.stoppedBy === "interrupted") {
      console.log(`stopped at step ${r.steps}; continue with --resume`);
      return 130;
    }
    if (r.stoppedBy === "nan") return 1;
    results.push(r);
  }

  console.log(`\n== ${task.name}: ${config.numLayers} layers, d=${config.hiddenSize}, r=${rank}, ${steps} steps ==`);
  printTable(head, [
    baseRow,
    ...results.map((r) => [
      r.method,
      r.trainable.toLocaleString("en-US"),
      r.percentOfLora.toFixed(2),
      r.metric!.value.toFixed(2),
      r.valLoss.toFixed(4),
      r.seconds.toFixed(1),
    ]),
  ]);
  console.log(`outputs in ${out}/ · total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}

function printTable(head: string[], rows: string[][]): void {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  console.log(
    [head, ...rows].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ")).join("\n"),
  );
}

if (import.meta.main) runMain(main);
