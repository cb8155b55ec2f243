/**
 * The recording side of reverse-mode autodiff. Each primitive calls
 * {@link record} with its name, parameters, inputs and output (an
 * {@link Equation}: data, not a closure); a node is kept only on tapes that
 * track one of the inputs, so values that depend only on non-differentiated
 * arguments cost no gradient work. {@link backward} walks the nodes in reverse
 * and applies each primitive's rule from the table it is given
 * (autodiff/vjp_rules.ts). Tapes nest: a backward pass run while an outer
 * tape is open is itself recorded, which is what makes gradients of gradients
 * work. The transforms (`grad`, `vjp`, …) live in autodiff/ and use this.
 * @module
 */
import { type Equation, type Primitive, type PrimitiveParams, primitives, type VjpRules } from "./primitives.ts";
import type { Tensor } from "./tensor.ts";

/** A recorded equation and which of its inputs the tape tracks. */
export interface Node extends Equation {
  readonly needed: readonly boolean[];
}

/** One recording: the tensors it differentiates with respect to and the primitives applied to them, in order. */
export class Tape {
  readonly tracked = new Set<Tensor>();
  readonly nodes: Node[] = [];
}

/** Open tapes, innermost last. */
export const tapes: Tape[] = [];

/** True while any tape is recording. */
export function recording(): boolean {
  return tapes.length > 0;
}

/**
 * Records `output = primitive[params](inputs)` on every tape that tracks an
 * input. Primitives declared non-differentiable are never recorded.
 */
export function record<P extends Primitive>(
  primitive: P,
  params: PrimitiveParams[P],
  inputs: readonly Tensor[],
  output: Tensor,
): void {
  if (!tapes.length || !primitives[primitive].differentiable) return;
  for (const tape of tapes) {
    let any = false;
    const needed = inputs.map((x) => {
      const n = tape.tracked.has(x);
      any ||= n;
      return n;
    });
    if (any) {
      tape.nodes.push({ primitive, params, inputs, output, needed } as Node);
      tape.tracked.add(output);
    }
  }
}

/**
 * Runs the tape backwards from `outputs` seeded with `seeds`, returning the
 * cotangent of every tracked tensor reached. `rules` gives each primitive's
 * vjp; `add` sums cotangents of a tensor used in several places.
 */
export function backward(
  tape: Tape,
  outputs: readonly Tensor[],
  seeds: readonly Tensor[],
  rules: VjpRules,
  add: (a: Tensor, b: Tensor) => Tensor,
  keep: ReadonlySet<Tensor>,
): Map<Tensor, Tensor> {
  const ct = new Map<Tensor, Tensor>();
  const protectedSet = new Set<Tensor>(seeds);
  // Early freeing is only safe when no outer tape may still need these values.
  const freeEarly = tapes.length === 0;
  const held = (t: Tensor) => {
    for (const v of ct.values()) if (v === t) return true;
    return false;
  };
  const drop = (t: Tensor) => {
    if (freeEarly && !protectedSet.has(t) && !held(t)) t.dispose();
  };
  const accumulate = (x: Tensor, g: Tensor) => {
    if (g.shape.length !== x.shape.length || g.shape.some((d, i) => d !== x.shape[i])) {
      throw new Error(
        `backward: cotangent shape [${g.shape}] does not match value shape [${x.shape}] (a vjp rule is wrong)`,
      );
    }
    const prev = ct.get(x);
    if (!prev) {
      ct.set(x, g);
      return;
    }
    const sum = add(prev, g);
    ct.set(x, sum);
    drop(prev);
    drop(g);
  };
  outputs.forEach((o, i) => accumulate(o, seeds[i]));
  for (let n = tape.nodes.length - 1; n >= 0; n--) {
    const node = tape.nodes[n];
    const g = ct.get(node.output);
    if (!g) continue;
    const rule = rules[node.primitive] as (g: Tensor, eq: Equation, needed: readonly boolean[]) => (Tensor | null)[];
    const grads = rule(g, node, node.needed);
    for (let i = 0; i < node.inputs.length; i++) {
      const gi = grads[i];
      if (node.needed[i] && gi) accumulate(node.inputs[i], gi);
    }
    if (!keep.has(node.output)) {
      ct.delete(node.output);
      drop(g);
    }
  }
  return ct;
}
