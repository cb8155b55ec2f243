/**
 * The recording side of reverse-mode autodiff. Each differentiable primitive
 * calls {@link record} with its inputs, its output and its vjp rule; a node is
 * kept only on tapes that track one of the inputs, so values that depend only
 * on non-differentiated arguments cost no gradient work. Tapes nest: a
 * backward pass run while an outer tape is open is itself recorded, which is
 * what makes gradients of gradients work. The transforms (`grad`, `vjp`, …)
 * live in autodiff/ and use this.
 * @module
 */
import type { Tensor } from "./tensor.ts";

/**
 * A vjp rule: given the cotangent `g` of the output and which inputs need a
 * cotangent, returns one cotangent per input (null where not needed or zero).
 */
export type VjpRule = (g: Tensor, needed: readonly boolean[]) => (Tensor | null)[];

interface Node {
  inputs: readonly Tensor[];
  output: Tensor;
  needed: boolean[];
  vjp: VjpRule;
}

/** One recording: the tensors it differentiates with respect to and the ops applied to them. */
export class Tape {
  readonly tracked = new Set<Tensor>();
  readonly nodes: Node[] = [];
}

/** Open tapes, innermost last. */
export const tapes: Tape[] = [];

/** True while any tape is recording (ops may skip building closures otherwise). */
export function recording(): boolean {
  return tapes.length > 0;
}

/** Records `output = op(inputs)` with its vjp rule on every tape that tracks an input. */
export function record(inputs: readonly Tensor[], output: Tensor, vjp: VjpRule): void {
  for (const tape of tapes) {
    let any = false;
    const needed = inputs.map((x) => {
      const n = tape.tracked.has(x);
      any ||= n;
      return n;
    });
    if (any) {
      tape.nodes.push({ inputs, output, needed, vjp });
      tape.tracked.add(output);
    }
  }
}

/**
 * Runs the tape backwards from `outputs` seeded with `seeds`, returning the
 * cotangent of every tracked tensor reached. `add` sums cotangents of a
 * tensor used in several places.
 */
export function backward(
  tape: Tape,
  outputs: readonly Tensor[],
  seeds: readonly Tensor[],
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
    const grads = node.vjp(g, node.needed);
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
