/**
 * A model past 4 GiB of float32 on the cpu backend: a random Llama of TinyLlama-1.1B's shape (dim 2048,
 * 22 layers, 32 query / 4 KV heads, hidden 5632, vocab 32000, untied head), one TL6 step (rank 8, AdamW +
 * clip) at batch 1 × seq 128. Each run is a fresh process, so the peak RSS it reports (the kernel's VmHWM)
 * is this job's alone.
 *
 *   deno run -A bench/tinyllama.ts          # report as Markdown
 *   deno run -A bench/tinyllama.ts --child  # the measured process (prints JSON)
 * @module
 */
import { dispose, setBackend } from "../mod.ts";
import { adamw, chain, clipByGlobalNorm } from "../optim/mod.ts";
import { key } from "../core/random.ts";
import { randomLlama } from "../llama/mod.ts";
import { preset } from "../peft/mod.ts";
import { makeBatch, planLoss, trainStep } from "../train/mod.ts";
import { cpuThreads, cpuWorkersReady } from "../backends/cpu/mod.ts";
import { table } from "./util.ts";

/** TinyLlama-1.1B's shape. */
const TINYLLAMA_1B = {
  vocabSize: 32000,
  hiddenSize: 2048,
  intermediateSize: 5632,
  numLayers: 22,
  numHeads: 32,
  numKvHeads: 4,
  headDim: 64,
  maxPositionEmbeddings: 2048,
  tieWordEmbeddings: false,
};

/** Peak resident set of this process so far (Linux VmHWM), or the current RSS elsewhere. */
function peakRss(): number {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+) kB/);
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return Deno.memoryUsage().rss;
}

interface Result {
  initS: number;
  stepS: number[];
  loss: number[];
  peakRssGiB: number;
  threads: number;
}

async function child(steps: number): Promise<void> {
  await setBackend("cpu");
  await cpuWorkersReady();
  const t0 = performance.now();
  const { config, params } = randomLlama({ ...TINYLLAMA_1B, seed: 0 });
  const seq = 128;
  const ids = Array.from({ length: seq + 1 }, (_, t) => (3 + t * 7919) % config.vocabSize);
  const batch = makeBatch([{ prompt: ids.slice(0, 1), answer: ids.slice(1) }], seq);
  const plan = preset("tl6", { rank: 8 });
  const { trainable, frozen } = plan.init(params, key(0));
  const opt = chain(clipByGlobalNorm(1), adamw(1e-3));
  const step = trainStep(planLoss(plan, config), opt);
  let state = { trainable, opt: opt.init(trainable) };
  const initS = (performance.now() - t0) / 1000;
  const stepS: number[] = [], loss: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    const r = step(state, frozen, batch);
    loss.push(await r.loss.item());
    r.loss.dispose();
    state = r.state;
    stepS.push((performance.now() - t) / 1000);
  }
  dispose([state, params, batch.tokens, batch.positions, batch.targets]);
  const out: Result = { initS, stepS, loss, peakRssGiB: peakRss() / 2 ** 30, threads: cpuThreads() };
  console.log(JSON.stringify(out));
}

/** Runs the measured process and prints the section. */
export async function benchTinyLlama(log: (s: string) => void = console.log, steps = 2): Promise<void> {
  log("\n## A model past 4 GiB: TinyLlama-1.1B shape (random weights), TL6 step, batch 1 × seq 128, cpu\n");
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", String(steps)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (code !== 0) {
    log(`(failed: ${dec.decode(stderr).trim().split("\n").slice(-3).join(" / ")})`);
    return;
  }
  const r: Result = JSON.parse(dec.decode(stdout).trim().split("\n").at(-1)!);
  log(table(
    ["what", "value"],
    [
      ["weights: random init + TL6 plan (s)", r.initS.toFixed(1)],
      ...r.stepS.map((s, i) => [`step ${i + 1} (s)`, s.toFixed(1)]),
      ["loss after each step", r.loss.map((l) => l.toFixed(3)).join(", ")],
      ["peak RSS (GiB)", r.peakRssGiB.toFixed(2)],
      ["threads", String(r.threads)],
    ],
  ));
}

if (import.meta.main) {
  if (Deno.args[0] === "--child") await child(Number(Deno.args[1] ?? 2));
  else await benchTinyLlama();
}
