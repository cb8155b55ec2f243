/**
 * The unfused program a function traces to on the current backend, for float32 inputs of the given shapes
 * (the jit passes' tests build their programs with it).
 * @module
 */
import type { Tensor } from "../../core/tensor.ts";
import { getBackend, swapBackend } from "../../core/runtime.ts";
import { fromBuffer } from "../../core/tensor.ts";
import { TraceBackend, type TraceBuffer } from "../../jit/trace.ts";
import { buildProgram } from "../../jit/passes.ts";
import type { Program } from "../../backends/program.ts";

/** The program `f` traces to (unfused), for float32 inputs of these shapes. */
export function traced(f: (...xs: Tensor[]) => Tensor | Tensor[], ...shapes: number[][]): Program {
  const t = new TraceBackend(getBackend(), "test");
  const xs = shapes.map((s, i) => fromBuffer(t, t.input(i, s.reduce((a, b) => a * b, 1), "float32"), s, "float32"));
  const previous = swapBackend(t);
  try {
    const ids = [f(...xs)].flat().map((o) => (o.buffer as TraceBuffer).id);
    return buildProgram(t.values, shapes.length, ids, shapes.map(() => false)).program;
  } finally {
    swapBackend(previous);
  }
}
