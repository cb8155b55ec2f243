/**
 * One optimisation step as a function: `valueAndGrad` with respect to the
 * trainable tree only, the optimizer update, and the new parameters, all in
 * one scope that owns the step's buffers. With `donate` (default), the
 * previous trainable tree and optimizer state are released, so nothing
 * accumulates across steps (what WebGPU needs).
 * @module
 */
import { valueAndGrad } from "../autodiff/grad.ts";
import { scope } from "../core/scope.ts";
import type { Tensor } from "../core/tensor.ts";
import * as tree from "../core/tree.ts";
import type { Tree } from "../core/tree.ts";
import { applyUpdates, type GradientTransformation, type OptState } from "../optim/transform.ts";

/** What a step carries from one call to the next: the trainable tree and the optimizer's (typed) state. */
export interface TrainState<P extends Tree = Tree, S extends OptState = OptState> {
  /** The parameters being trained. */
  trainable: P;
  /** The optimizer's state, e.g. `[ClipByGlobalNormState, AdamWState]` for `chain(clipByGlobalNorm(1), adamw(lr))`. */
  opt: S;
}

/** Options of {@link trainStep}. */
export interface TrainStepOptions {
  /** Release the previous state's tensors after the step (default true). */
  donate?: boolean;
}

/** The tensors anywhere in a value (trees, optimizer states with numbers). */
function tensorsOf(x: unknown, out = new Set<Tensor>()): Set<Tensor> {
  if (!x || typeof x !== "object") return out;
  if ("shape" in x && "dtype" in x && "storage" in x) out.add(x as Tensor);
  else if (Array.isArray(x)) { for (const v of x) tensorsOf(v, out); }
  else for (const v of Object.values(x)) tensorsOf(v, out);
  return out;
}

/**
 * Makes `step(state, ...args) → {state, loss}` for `lossFn(trainable, ...args)`.
 * Frozen parameters and data go in `args`: they are never differentiated.
 * The gradients live only inside the step's scope (returning them would keep
 * a second copy of the trainable tree alive per step); take `valueAndGrad`
 * of the loss where they are wanted.
 * @example
 * const step = trainStep(planLoss(plan, config), adamw(1e-3));
 * let state = { trainable, opt: opt.init(trainable) };
 * ({ state, loss } = step(state, frozen, batch));
 */
export function trainStep<P extends Tree, A extends unknown[], S extends OptState>(
  lossFn: (trainable: P, ...args: A) => Tensor,
  optimizer: GradientTransformation<S>,
  opts: TrainStepOptions = {},
): (state: TrainState<P, S>, ...args: A) => { state: TrainState<P, S>; loss: Tensor } {
  const { donate = true } = opts;
  const vg = valueAndGrad(lossFn);
  return (state, ...args) => {
    const out = scope(() => {
      const [loss, grads] = vg(state.trainable, ...args);
      const { updates, state: opt } = optimizer.update(grads, state.opt, state.trainable);
      const trainable = applyUpdates(state.trainable, updates);
      return { loss, state: { trainable, opt } as TrainState<P, S> };
    });
    if (donate) {
      const keep = tensorsOf(out.state);
      for (const t of tensorsOf(state)) if (!keep.has(t)) t.dispose();
    }
    return out;
  };
}

/** Number of elements in the tensor leaves of a tree. */
export function countParams(t: Tree): number {
  return tree.leaves(t).reduce((n, x) => n + x.size, 0);
}
