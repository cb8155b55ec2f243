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
import { jit } from "../jit/jit.ts";
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
  /**
   * Run the step as one jitted program (default true): traced once per batch
   * shape, forward, backward and optimizer together, bit-identical to the
   * eager step on cpu. The loss function must not read tensor values. false
   * runs it op by op.
   */
  jit?: boolean;
  /** Fuse elementwise chains in the jitted step where the backend can (default true; see `JitOptions.fuse`). */
  fuse?: boolean;
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
 * of the loss where they are wanted. By default the whole step is jitted
 * (see {@link TrainStepOptions.jit}): the optimizers keep their step count
 * as a tensor and `makeBatch` pads the loss positions to a bucket, so one
 * trace serves every step of a batch shape. A host number in the arguments
 * retraces on every new value (the compiled program is kept).
 * @example
 * const step = trainStep(planLoss(plan, config), adamw(1e-3));
 * let state = { trainable, opt: opt.init(trainable) };
 * ({ state, loss } = step(state, frozen, batch));
 */
export function trainStep<P extends Tree, A extends unknown[], S extends OptState>(
  lossFn: (trainable: P, ...args: A) => Tensor,
  optimizer: GradientTransformation<S>,
  opts: TrainStepOptions = {},
): TrainStepFn<P, A, S> {
  const { donate = true, jit: jitted = true, fuse = true } = opts;
  const vg = valueAndGrad(lossFn);
  const body = (state: TrainState<P, S>, ...args: A) => {
    const [loss, grads] = vg(state.trainable, ...args);
    const { updates, state: opt } = optimizer.update(grads, state.opt, state.trainable);
    const trainable = applyUpdates(state.trainable, updates);
    return { loss, state: { trainable, opt } as TrainState<P, S> };
  };
  if (jitted) {
    const step = jit(body, { donate: donate ? [0] : [], fuse });
    const call = (state: TrainState<P, S>, ...args: A) => {
      try {
        return step(state, ...args);
      } catch (e) {
        if (e instanceof Error && /created outside it/.test(e.message)) {
          e.message += "; trainStep: pass such tensors as step arguments, or use trainStep(..., { jit: false })";
        }
        throw e;
      }
    };
    const fn = Object.assign(call, { clear: () => step.clear() });
    return Object.defineProperty(fn, "traces", { get: () => step.traces }) as TrainStepFn<P, A, S>;
  }
  const eager = (state: TrainState<P, S>, ...args: A) => {
    const out = scope(() => body(state, ...args));
    if (donate) {
      const keep = tensorsOf(out.state);
      for (const t of tensorsOf(state)) if (!keep.has(t)) t.dispose();
    }
    return out;
  };
  return Object.assign(eager, { clear: () => {}, traces: 0 });
}

/**
 * What {@link trainStep} returns: the step, `clear` to release its jit traces (the memory their
 * programs hold), and `traces`, how many it made (one per batch shape; 0 when eager).
 */
export type TrainStepFn<P extends Tree, A extends unknown[], S extends OptState> =
  & ((
    state: TrainState<P, S>,
    ...args: A
  ) => { state: TrainState<P, S>; loss: Tensor })
  & { clear(): void; readonly traces: number };

/** Number of elements in the tensor leaves of a tree. */
export function countParams(t: Tree): number {
  return tree.leaves(t).reduce((n, x) => n + x.size, 0);
}
