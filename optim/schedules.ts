/**
 * Learning-rate schedules: functions of the step count (0-based), passed
 * where a {@link Schedule} is taken. `optim.schedules` in mod.ts.
 * @module
 */
import type { Schedule } from "./transform.ts";

export type { Schedule };

/** A constant learning rate. */
export function constant(lr: number): (step: number) => number {
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
): (step: number) => number {
  if (!(totalSteps > 0) || warmupSteps < 0) {
    throw new Error(`cosineWithWarmup: need totalSteps > 0 and warmupSteps >= 0, got ${totalSteps}, ${warmupSteps}`);
  }
  return (step: number) => {
    if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
    const t = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return minLr + 0.5 * (peak - minLr) * (1 + Math.cos(Math.PI * t));
  };
}
