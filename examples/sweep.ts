/**
 * Methods × ranks on one model and task, as in the paper's Table 2 and
 * Figure 2, research-grade: per cell the learning rate is chosen from a grid
 * on a validation split (held out of the training split, disjoint from the
 * evaluation split), then the cell is trained with several seeds and reported
 * as mean ± std, and the paper's claims are checked against the numbers.
 *
 * Writes to --out: results.jsonl (a header with the shared settings, then one
 * line per run: its settings and result), sweep.md (table, chosen rates,
 * collapses, claims with verdicts) and sweep.svg (metric vs rank, error bars).
 * Rerunning the same command continues run by run; other shared settings in
 * the same --out are refused, naming them.
 *
 *   deno run -A examples/sweep.ts                       # all eight presets × r ∈ {2, 8, 32}, built-in task
 *   deno run -A examples/sweep.ts --method ./examples/tied_pairs.ts   # plus a user-defined tying scheme
 *   deno run -A examples/sweep.ts --model ../shared/models/stories260K --task multi30k --methods tl6,lora \
 *     --ranks 2,8 --grid 3e-3,1e-3 --seeds 3 --steps 200 --batch 8 --seq 96 --eval-limit 50
 */
import { resolve } from "node:path";
import { getBackend, setBackend } from "../mod.ts";
import { loadLlama, loadTokenizer, writeTextAtomic } from "../io/mod.ts";
import { PRESET_NAMES } from "../peft/mod.ts";
import {
  loadMethodModule,
  prepareSweepData,
  presetMethod,
  runSweep,
  type SweepMethod,
  sweepReport,
} from "../apps/mod.ts";
import {
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

/** The defaults (they finish in under 45 minutes on 2 cores for the built-in task; see the README). */
const DEFAULT_GRID = "1e-1,2e-2,5e-3,1e-3";

const HELP = `Sweep methods × ranks (the paper's Table 2 / Figure 2): learning rate chosen per cell on a
validation split, several seeds per cell, mean ± std, and the paper's claims checked.

usage: deno run -A examples/sweep.ts [flags]

  --model DIR      Hugging Face Llama directory (default: the built-in tiny model)
  --task NAME      ${TASK_NAMES.join(" | ")} (default: builtin)
  --data PATH      task data (default: the task's own)
  --methods LIST   comma-separated presets, any case, or "none" (default: ${PRESET_NAMES.join(",")})
  --method FILE    a module exporting a plan factory, \`plan\` or default: (opts: { rank }) => Plan, and
                   optionally \`name\`; repeatable; its rows follow the presets'
  --ranks LIST     comma-separated ranks (default: 2,8,32)
  --grid LIST      learning rates tried per cell, chosen on validation (default: ${DEFAULT_GRID})
  --seeds N        seeds per cell at the chosen rate: 0 … N-1; seed 0 also selects the rate (default: 3)
  --steps N        training steps per run (default: 100)
  --batch N        examples per step (default: 16)
  --seq N          tokens per example (default: 16 on builtin, else 128)
  --warmup N       warm-up steps of the cosine schedule (default: 10% of --steps)
  --val-size N     examples held out of the training split for validation (default: 100)
  --eval-limit N   evaluation examples scored per run (default: 100)
  --delta X        tolerance of the claims, in metric points (default: 2)
  --backend NAME   cpu | webgpu (default: cpu)
  --out DIR        output directory (default: out/sweep): results.jsonl, sweep.md, sweep.svg; rerunning
                   the same command there continues the sweep, other shared settings are refused
  --overwrite      start over: remove --out's results.jsonl first
  -h, --help
`;

async function main(args: string[]): Promise<number> {
  const f = parseFlags(args, {
    model: { type: "string" },
    task: { type: "string", default: "builtin" },
    data: { type: "string" },
    methods: { type: "string", default: PRESET_NAMES.join(",") },
    method: { type: "string", multiple: true, default: [] },
    ranks: { type: "string", default: "2,8,32" },
    grid: { type: "string", default: DEFAULT_GRID },
    seeds: { type: "string", default: "3" },
    steps: { type: "string", default: "100" },
    batch: { type: "string", default: "16" },
    seq: { type: "string" },
    warmup: { type: "string" },
    "val-size": { type: "string", default: "100" },
    "eval-limit": { type: "string", default: "100" },
    delta: { type: "string", default: "2" },
    backend: { type: "string", default: "cpu" },
    out: { type: "string", default: "out/sweep" },
    overwrite: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  });
  if (f.help) {
    console.log(HELP);
    return 0;
  }
  const presets = f.methods!.trim().toLowerCase() === "none"
    ? []
    : listFlag(f.methods!).map((m) => methodFlag(m, "methods"));
  const ranks = [...new Set(listFlag(f.ranks!).map((r) => intFlag("ranks", r, 1)))].sort((a, b) => a - b);
  const grid = [...new Set(listFlag(f.grid!).map((x) => positiveFlag("grid", x)))].sort((a, b) => b - a);
  if (!ranks.length) throw new UsageError("--ranks needs at least one rank");
  if (!grid.length) throw new UsageError("--grid needs at least one learning rate");
  const nSeeds = intFlag("seeds", f.seeds, 1);
  const task = taskFlag(f.task!);
  const builtin = task.name === "builtin";
  const steps = intFlag("steps", f.steps, 1), batchSize = intFlag("batch", f.batch, 1);
  const seqLen = intFlag("seq", f.seq ?? (builtin ? "16" : "128"), 2);
  const warmup = intFlag("warmup", f.warmup ?? String(Math.round(steps / 10)), 0);
  const valSize = intFlag("val-size", f["val-size"], 1), evalLimit = intFlag("eval-limit", f["eval-limit"], 1);
  const delta = positiveFlag("delta", f.delta);
  const out = f.out!.replace(/\/+$/, "") || "/";

  const methods: SweepMethod[] = presets.map(presetMethod);
  for (const file of f.method as string[]) {
    const m = await loadMethodModule(file).catch((e) => {
      throw new UsageError((e as Error).message);
    });
    if (methods.some((x) => x.name === m.name)) throw new UsageError(`--method ${file}: "${m.name}" is listed twice`);
    methods.push(m);
  }
  if (!methods.length) throw new UsageError("no methods: give --methods and/or --method FILE");

  await setBackend(f.backend!);
  const modelDir = f.model ?? new URL("./tiny", import.meta.url).pathname;
  const { config, params } = await loadLlama(modelDir);
  const tok = await loadTokenizer(modelDir);
  const data = await prepareSweepData(task, tok, { data: f.data, seqLen, valSize, evalLimit, batchSize });
  console.error(
    `${task.name}: ${data.sizes.train} training, ${data.sizes.validation} validation (held out of train` +
      `${data.droppedOverlap ? `; ${data.droppedOverlap} dropped as evaluation prompts` : ""}), ` +
      `${data.sizes.evaluation} evaluation examples`,
  );

  const results = `${out}/results.jsonl`;
  if (f.overwrite) await Deno.remove(results).catch(() => {});
  const controller = new AbortController();
  Deno.addSignalListener("SIGINT", () => {
    if (controller.signal.aborted) Deno.exit(130);
    console.error("\ninterrupted: stopping after this step (Ctrl-C again to quit now)");
    controller.abort();
  });
  const t0 = performance.now();
  const outcome = await runSweep({
    model: { config, params, tok },
    data,
    methods,
    ranks,
    grid,
    seeds: Array.from({ length: nSeeds }, (_, i) => i),
    training: { steps, batchSize, warmup },
    results,
    settings: {
      model: resolve(modelDir),
      task: task.name,
      data: f.data ?? null,
      dataFingerprint: data.fingerprint,
      steps,
      batchSize,
      seqLen,
      warmup,
      valSize,
      evalLimit,
      backend: getBackend().name,
    },
    signal: controller.signal,
  }).catch((e) => {
    if (/holds a sweep made with other shared settings/.test((e as Error).message)) {
      throw new UsageError((e as Error).message);
    }
    throw e;
  });
  const wall = (performance.now() - t0) / 1000;
  if (outcome.interrupted) {
    console.error(
      `stopped: ${outcome.ran} runs recorded in ${results} this time; run the same command again to continue`,
    );
    return 130;
  }
  const report = sweepReport(outcome.header, outcome.runs, outcome.shape, { delta });
  await writeTextAtomic(`${out}/sweep.md`, report.markdown);
  await writeTextAtomic(`${out}/sweep.svg`, report.svg);
  console.log(report.markdown);
  console.error(
    `wrote ${out}/sweep.md and ${out}/sweep.svg · ${outcome.ran} runs trained, ${outcome.skipped} found recorded, ` +
      `of ${outcome.total} · ${wall.toFixed(0)} s`,
  );
  return 0;
}

if (import.meta.main) runMain(main);
