/**
 * Learning-rate schedules: functions of the 0-based step, passed where a
 * {@link Schedule} is taken. Each takes the step as a float32 scalar tensor
 * (what the optimizers pass: their count is a tensor, so a jitted step traces
 * once) or as a number (for logging). `optim.schedules` in mod.ts.
 * @module
 */
import { add, cos, div, less, minimum, mul, sub, where } from "../core/ops/elementwise.ts";
import { isTensor, type Tensor } from "../core/tensor.ts";
import type { Schedule } from "./transform.ts";

export type { Schedule };

/** A schedule of the step as a tensor (for the optimizers) or a number (for logs). */
export type ScheduleFn = { (step: number): number; (step: Tensor): Tensor | number };

/** A constant learning rate. */
export function constant(lr: number): ScheduleFn {
  return () => lr;
}

/**
 * Linear warm-up from 0 to `peak` over `warmupSteps`, then cosine decay to
 * `minLr` at `totalSteps` (and `minLr` after).
 */
export function cosineWithWarmup(
  peak: number,
  warmupSteps: number,
  totalSteps: number,
  minLr = 0,
): ScheduleFn {
  if (!(totalSteps > 0) || warmupSteps < 0) {
    throw new Error(`cosineWithWarmup: need totalSteps > 0 and warmupSteps >= 0, got ${totalSteps}, ${warmupSteps}`);
  }
  const decaySteps = Math.max(1, totalSteps - warmupSteps), half = 0.5 * (peak - minLr);
  return ((step: Tensor | number) => {
    if (!isTensor(step)) {
      if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
      return minLr + half * (1 + Math.cos(Math.PI * Math.min(1, (step - warmupSteps) / decaySteps)));
    }
    const t = minimum(div(sub(step, warmupSteps), decaySteps), 1);
    const decayed = add(mul(add(cos(mul(t, Math.PI)), 1), half), minLr);
    return warmupSteps ? where(less(step, warmupSteps), div(mul(add(step, 1), peak), warmupSteps), decayed) : decayed;
  }) as ScheduleFn;
}
