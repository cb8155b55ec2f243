/**
 * Peak resident memory of the 15M-shape TL6 step (b4×s256, r=8, AdamW + clip, jitted as trainStep runs it)
 * in a process of its own, so nothing else the bench does is counted: the peak RSS (VmHWM, Linux) after
 * `reps` steps and a warm-up, printed as JSON. bench/peers/mod.ts runs it beside the PyTorch peer's.
 *
 *   deno run -A bench/peers/train_rss.ts [reps]
 * @module
 */
import { dispose } from "../../mod.ts";
import { randomLlama, TINYSTORIES_15M } from "../../llama/mod.ts";
import { key } from "../../core/random.ts";
import { preset } from "../../peft/mod.ts";
import { adamw, chain, clipByGlobalNorm } from "../../optim/mod.ts";
import { planLoss, trainStep } from "../../train/mod.ts";
import { fullBatch } from "../train.ts";

/** VmHWM of this process in MiB, or null where /proc is absent. */
export function peakRssMiB(): number | null {
  try {
    const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

if (import.meta.main) {
  const reps = Number(Deno.args[0] ?? 3);
  const { config, params } = randomLlama({ ...TINYSTORIES_15M, seed: 0 });
  const batch = fullBatch(config, 4, 256);
  const plan = preset("tl6", { rank: 8 });
  const { trainable, frozen } = plan.init(params, key(0));
  const opt = chain(clipByGlobalNorm(1), adamw(1e-3));
  const step = trainStep(planLoss(plan, config), opt);
  let state = { trainable, opt: opt.init(trainable) };
  for (let i = 0; i <= reps; i++) {
    const r = step(state, frozen, batch);
    await r.loss.item();
    r.loss.dispose();
    state = r.state;
  }
  dispose([state, params]);
  console.log(JSON.stringify({ peakRssMiB: peakRssMiB(), steps: reps + 1 }));
}
