/**
 * From a trace to a {@link Program}: common subexpressions merged, dead calls
 * dropped, outputs made fresh, values renumbered, liveness computed. No pass
 * reorders or rewrites a float operation: steps keep their trace order and
 * their exact arguments, so replaying the program computes what eager
 * execution computed, bit for bit.
 * @module
 */
import { callInputs, type KernelCall, mapCall, type Program, type Step, type ValueId } from "../backends/program.ts";
import type { Origin } from "./trace.ts";
import type { ValueInfo } from "../backends/program.ts";
import type { TypedArray } from "../core/dtype.ts";

/** Constants up to this many elements are merged when their bytes are equal (scalars, small masks). */
const MERGE_CONSTANTS_UP_TO = 1024;

/** A program and the data of its lifted inputs (see {@link buildProgram}). */
export interface Built {
  /** The program: the traced inputs, then one input per scalar constant, then constants and steps. */
  program: Program;
  /** Data of the scalar constants made inputs, in input order. */
  scalars: TypedArray[];
}

/**
 * Builds the program of a trace: `values` in creation order, `outputs` the
 * traced ids returned, `donate` per traced input. Scalar constants (numbers
 * computed on the host: a learning rate, a bias correction) become inputs
 * after the traced ones, so a retrace that changes only them reuses the
 * compiled program; equal ones are one input with `mergeScalars`.
 */
export function buildProgram(
  values: readonly { info: ValueInfo; origin: Origin }[],
  traced: number,
  outputs: readonly ValueId[],
  donate: readonly boolean[],
  mergeScalars = false,
): Built {
  // 1. Common subexpressions: a call equal to an earlier one (same kernel, arguments and canonical operands)
  // is that value; so is a small constant with the same bytes. Scalars are merged only with `mergeScalars`
  // (no host values among the arguments: nothing retraces for new ones); else their values may change from
  // one trace to the next while the program stays the same. A strided copy that reads its
  // operand element for element (a permute or reshape moving only axes of size 1: a decode step's heads) is
  // its operand: no copy.
  const canon = new Int32Array(values.length), seen = new Map<string, ValueId>();
  const inputIds: ValueId[] = new Array(traced);
  values.forEach((v, id) => {
    canon[id] = id;
    const o = v.origin;
    let key: string | null = null;
    if (o.kind === "input") inputIds[o.index] = id;
    else if (o.kind === "constant") {
      if ((o.data.length > 1 || mergeScalars) && o.data.length <= MERGE_CONSTANTS_UP_TO) {
        // By bytes: the decimal form would equate −0 with 0.
        key = `c${v.info.dtype}:${new Uint8Array(o.data.buffer, o.data.byteOffset, o.data.byteLength).join(",")}`;
      }
    } else if (copiesAsIs(o.call, values[o.call.kernel === "strided" ? o.call.x : id].info, v.info)) {
      canon[id] = canon[(o.call as { x: ValueId }).x];
      return;
    } else key = JSON.stringify(mapCall(o.call, (x) => canon[x]));
    if (key === null) return;
    const prev = seen.get(key);
    if (prev === undefined) seen.set(key, id);
    else canon[id] = prev;
  });
  const outs = outputs.map((o) => canon[o]);

  // 2. Dead code: only values an output depends on.
  const live = new Uint8Array(values.length);
  for (const o of outs) live[o] = 1;
  for (let id = values.length - 1; id >= 0; id--) {
    const o = values[id].origin;
    if (!live[id] || canon[id] !== id || o.kind !== "call") continue;
    for (const x of callInputs(o.call)) live[canon[x]] = 1;
  }

  // 3. Renumber: traced inputs, scalar inputs, then constants, then calls in trace order.
  const num = new Int32Array(values.length).fill(-1);
  const infos: ValueInfo[] = [];
  inputIds.forEach((id) => {
    num[id] = infos.length;
    infos.push(values[id].info);
  });
  const scalars: TypedArray[] = [];
  values.forEach((v, id) => {
    if (v.origin.kind === "constant" && live[id] && canon[id] === id && v.info.size === 1) {
      num[id] = infos.length;
      scalars.push(v.origin.data);
      infos.push(v.info);
    }
  });
  const inputs = infos.length;
  const constants: { id: ValueId; data: TypedArray }[] = [];
  values.forEach((v, id) => {
    if (v.origin.kind === "constant" && live[id] && canon[id] === id && v.info.size !== 1) {
      num[id] = infos.length;
      constants.push({ id: infos.length, data: v.origin.data });
      infos.push(v.info);
    }
  });
  const steps: Step[] = [];
  values.forEach((v, id) => {
    if (v.origin.kind === "call" && live[id] && canon[id] === id) {
      num[id] = infos.length;
      steps.push({ call: mapCall(v.origin.call, (x) => num[canon[x]]), out: infos.length });
      infos.push(v.info);
    }
  });

  // 4. Outputs are fresh values, each returned once: an input, a constant or a repeat gets an identity copy.
  const firstStepValue = inputs + constants.length;
  const returned = new Set<ValueId>();
  const outputIds = outs.map((o) => {
    let v = num[o];
    if (v < firstStepValue || returned.has(v)) {
      const info = infos[v];
      steps.push({
        call: { kernel: "strided", x: v, outShape: [info.size], strides: [1], offset: 0 },
        out: infos.length,
      });
      v = infos.length;
      infos.push(info);
    }
    returned.add(v);
    return v;
  });

  // 5. Liveness: the last step reading each value; never an output, a constant or a kept input.
  const read = new Set(steps.flatMap((s) => callInputs(s.call)));
  const donated = Array.from({ length: inputs }, (_, i) => i < traced && donate[i] && read.has(i));
  const p = { values: infos, inputs, donated, constants, steps, outputs: outputIds };
  return { program: { ...p, lastUse: lastUses(p) }, scalars };
}

/** Whether `c` is a strided copy of all of its operand (`from`) in its own order: the identity. */
function copiesAsIs(c: KernelCall, from: ValueInfo, to: ValueInfo): boolean {
  if (c.kernel !== "strided" || c.offset !== 0 || from.size !== to.size || from.dtype !== to.dtype) return false;
  let stride = 1;
  for (let k = c.outShape.length - 1; k >= 0; k--) {
    if (c.outShape[k] !== 1 && c.strides[k] !== stride) return false;
    stride *= c.outShape[k];
  }
  return true;
}

/**
 * Per step: the values whose last reader it is (their buffers may be reused once it has run); never an
 * output, a constant or an input that is not donated.
 */
export function lastUses(p: Omit<Program, "lastUse">): ValueId[][] {
  const last = new Int32Array(p.values.length).fill(-1);
  p.steps.forEach((s, i) => {
    for (const x of callInputs(s.call)) last[x] = i;
  });
  const returned = new Set(p.outputs), firstStepValue = p.inputs + p.constants.length;
  const lastUse: ValueId[][] = p.steps.map(() => []);
  for (let v = 0; v < p.values.length; v++) {
    if (last[v] < 0 || returned.has(v)) continue;
    if (v < p.inputs ? !p.donated[v] : v < firstStepValue) continue;
    lastUse[last[v]].push(v);
  }
  return lastUse;
}

/**
 * `p` with the steps `drop` says to drop removed and each kept step's call replaced by `replace(i)` where it
 * gives one; values renumbered (inputs and constants keep their ids; step values follow the kept steps, in
 * order) and liveness recomputed. For passes that merge steps into one (jit/fuse.ts, jit/composite.ts).
 */
export function rebuilt(
  p: Program,
  drop: (i: number) => boolean,
  replace: (i: number) => KernelCall | undefined,
): Program {
  const firstStepValue = p.inputs + p.constants.length;
  const num = new Int32Array(p.values.length).fill(-1);
  for (let v = 0; v < firstStepValue; v++) num[v] = v;
  const kept: Step[] = [], infos = p.values.slice(0, firstStepValue);
  p.steps.forEach((s, i) => {
    if (drop(i)) return;
    num[s.out] = infos.length;
    kept.push({ call: replace(i) ?? s.call, out: infos.length });
    infos.push(p.values[s.out]);
  });
  const steps = kept.map((s) => ({ call: mapCall(s.call, (x) => num[x]), out: s.out }));
  const q = { ...p, values: infos, steps, outputs: p.outputs.map((o) => num[o]) };
  return { ...q, lastUse: lastUses(q) };
}
