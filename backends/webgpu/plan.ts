/**
 * Memory planning for a compiled program, by liveness: where every buffer a
 * program's kernels touch lives. Inputs and constants stay where they are;
 * intermediates (and kernel scratch such as split-K partials) share a few
 * arena buffers, allocated once per compiled program, a buffer going back to
 * the arena after its value's last read. Outputs, by {@link OutputPlacement}:
 * one the size of a donated input (a training step's new parameter and its
 * old one) swaps with it: it is written into a spare buffer the program
 * keeps, and the donated input's memory becomes the spare, so a loop feeding
 * outputs back as inputs alternates between two buffers per parameter (the
 * step that defines a new parameter also reads the old one, so it cannot be
 * written in place by the same kernels). Otherwise an output goes into a
 * donated input whose last read is behind it, or into a new buffer per run.
 * Pure: no GPU here, so it is tested without an adapter.
 * @module
 */
import { callInputs, type Program, type ValueId } from "../program.ts";

/** An allocation or release the kernels of one step make, in order (buffer ids: see {@link planMemory}). */
export type PlanEvent = { readonly kind: "alloc" | "free"; readonly buf: number };

/** Where a buffer lives. */
export type Location =
  | { readonly kind: "input"; readonly index: number }
  | { readonly kind: "constant"; readonly index: number }
  | { readonly kind: "arena"; readonly slot: number }
  | { readonly kind: "output"; readonly index: number };

/** Where an output's memory comes from (see the module doc). */
export type OutputPlacement =
  | { readonly kind: "new" }
  | { readonly kind: "into"; readonly input: number }
  | { readonly kind: "swap"; readonly input: number };

/** The plan: a location per buffer id, the arena's buffer sizes, and where outputs' memory comes from. */
export interface MemoryPlan {
  /** Location of each buffer id (values first, then scratch). */
  readonly where: readonly Location[];
  /** Bytes of each arena buffer. */
  readonly arena: readonly number[];
  /** Per output. */
  readonly outputs: readonly OutputPlacement[];
  /** Per value: the last step reading it (−1: never read). */
  readonly lastRead: readonly number[];
}

/** Step index reading each value last (−1 where no step reads it). */
export function lastReads(program: Program): number[] {
  const last = new Array<number>(program.values.length).fill(-1);
  program.steps.forEach((s, t) => {
    for (const v of callInputs(s.call)) last[v] = t;
  });
  return last;
}

/**
 * Plans memory. Buffer ids 0 … values − 1 are the program's values; ids from
 * `values.length` on are kernel scratch. `events[t]` lists step t's
 * allocations and releases in the order its kernels made them (the step's
 * value among them); `bytes[id]` is each buffer's binding size. Release
 * points come from the reads of the steps themselves; `program.lastUse` is
 * checked against them (a wrong entry would let a value be overwritten while
 * still needed).
 */
export function planMemory(
  program: Program,
  events: readonly (readonly PlanEvent[])[],
  bytes: readonly number[],
): MemoryPlan {
  const nv = program.values.length;
  const lastRead = lastReads(program);
  const isOutput = new Array<number>(nv).fill(-1);
  program.outputs.forEach((v, k) => (isOutput[v] = k));
  const constIndex = new Map<ValueId, number>(program.constants.map((c, i) => [c.id, i]));
  const stepOf = new Array<number>(nv).fill(-1);
  program.steps.forEach((s, t) => (stepOf[s.out] = t));
  program.lastUse.forEach((vs, t) => {
    for (const v of vs) {
      const why = v < program.inputs && !program.donated[v]
        ? "an input that is not donated"
        : constIndex.has(v)
        ? "a constant"
        : isOutput[v] >= 0
        ? "an output"
        : lastRead[v] !== t
        ? `a value last read at step ${lastRead[v]}`
        : "";
      if (why) throw new Error(`webgpu: compile: program.lastUse[${t}] lists value ${v}, ${why}`);
    }
  });

  const where: Location[] = [];
  for (let j = 0; j < program.inputs; j++) where[j] = { kind: "input", index: j };
  for (const [v, i] of constIndex) where[v] = { kind: "constant", index: i };
  const arena: number[] = [];
  const freeSlots: number[] = [];
  const inputBytes = (j: number) => Math.max(4, program.values[j].size * 4);
  // Swaps: each output with the first donated input of its size not yet taken, in order.
  const outputs: OutputPlacement[] = [];
  const swapped = new Set<number>();
  program.outputs.forEach((v, k) => {
    for (let j = 0; j < program.inputs; j++) {
      if (program.donated[j] && !swapped.has(j) && inputBytes(j) === bytes[v]) {
        swapped.add(j);
        outputs[k] = { kind: "swap", input: j };
        return;
      }
    }
    outputs[k] = { kind: "new" };
  });
  // Donated inputs (not swapped) whose last read is behind: their buffers can take an output.
  const donatedFree: number[] = [];
  const freeDonated = (j: number) => {
    if (program.donated[j] && !swapped.has(j)) donatedFree.push(j);
  };
  for (let j = 0; j < program.inputs; j++) if (lastRead[j] < 0) freeDonated(j);

  const take = (need: number): number => {
    // Best fit among free arena buffers; else grow the largest free one (the arena is sized after planning).
    let best = -1;
    for (let i = 0; i < freeSlots.length; i++) {
      if (best < 0) {
        best = i;
        continue;
      }
      const cap = arena[freeSlots[i]], bestCap = arena[freeSlots[best]];
      const better = cap >= need ? bestCap < need || cap < bestCap : bestCap < need && cap > bestCap;
      if (better) best = i;
    }
    if (best < 0) {
      arena.push(need);
      return arena.length - 1;
    }
    const slot = freeSlots.splice(best, 1)[0];
    arena[slot] = Math.max(arena[slot], need);
    return slot;
  };
  const release = (id: number) => {
    const w = where[id];
    if (w?.kind === "arena") freeSlots.push(w.slot);
  };

  program.steps.forEach((step, t) => {
    for (const e of events[t]) {
      if (e.kind === "free") {
        release(e.buf);
        continue;
      }
      const k = e.buf < nv ? isOutput[e.buf] : -1;
      if (k < 0) {
        where[e.buf] = { kind: "arena", slot: take(bytes[e.buf]) };
        continue;
      }
      if (outputs[k].kind === "swap") {
        where[e.buf] = { kind: "output", index: k };
        continue;
      }
      // Into a free donated input of the closest size that fits, else a new buffer per run.
      let pick = -1;
      for (let i = 0; i < donatedFree.length; i++) {
        const b = inputBytes(donatedFree[i]);
        if (b >= bytes[e.buf] && (pick < 0 || b < inputBytes(donatedFree[pick]))) pick = i;
      }
      if (pick >= 0) {
        const j = donatedFree.splice(pick, 1)[0];
        outputs[k] = { kind: "into", input: j };
        where[e.buf] = { kind: "input", index: j };
      } else where[e.buf] = { kind: "output", index: k };
    }
    if (where[step.out] === undefined) throw new Error(`webgpu: compile: step ${t} did not allocate its value`);
    // After the step: release what it read last (and its value if nothing reads it).
    for (const v of new Set(callInputs(step.call))) {
      if (lastRead[v] !== t) continue;
      if (v < program.inputs) freeDonated(v);
      else if (isOutput[v] < 0) release(v);
    }
    if (lastRead[step.out] < 0 && isOutput[step.out] < 0) release(step.out);
  });
  return { where, arena, outputs, lastRead };
}

/** Checks a program's structure (value numbering, operands defined before use, outputs); throws naming the fault. */
export function validateProgram(program: Program): void {
  const { values, inputs, steps, outputs } = program;
  const fail = (what: string): never => {
    throw new Error(`webgpu: compile: ${what}`);
  };
  if (program.donated.length !== inputs) fail(`donated has ${program.donated.length} entries for ${inputs} inputs`);
  if (program.lastUse.length !== steps.length) fail(`lastUse has ${program.lastUse.length} entries, not one per step`);
  const first = inputs + program.constants.length;
  if (first + steps.length !== values.length) {
    fail(
      `${values.length} values, expected ${inputs} inputs + ${program.constants.length} constants + ${steps.length} steps`,
    );
  }
  program.constants.forEach((c, i) => {
    if (c.id !== inputs + i) fail(`constant ${i} has id ${c.id}, expected ${inputs + i}`);
    if (c.data.length !== values[c.id].size) {
      fail(`constant ${c.id} has ${c.data.length} elements, its info says ${values[c.id].size}`);
    }
  });
  steps.forEach((s, t) => {
    if (s.out !== first + t) fail(`step ${t} defines value ${s.out}, expected ${first + t}`);
    for (const v of callInputs(s.call)) {
      if (!(Number.isInteger(v) && v >= 0 && v < s.out)) {
        fail(`step ${t} (${s.call.kernel}) reads value ${v}, not defined before it`);
      }
    }
  });
  const seen = new Set<number>();
  for (const v of outputs) {
    if (!(Number.isInteger(v) && v >= first && v < values.length)) fail(`output ${v} is not a value defined by a step`);
    if (seen.has(v)) fail(`value ${v} is output twice`);
    seen.add(v);
  }
}
