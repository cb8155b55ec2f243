/**
 * The generic executor: runs a {@link Program} on a backend without a
 * `compile` of its own by calling its kernels step by step, exactly as eager
 * execution would, and freeing each value after its last use.
 * @module
 */
import type { Backend, BackendBuffer, StridedInput } from "../backends/backend.ts";
import {
  type CompiledProgram,
  compositeByKernels,
  fusedByKernels,
  type KernelCall,
  type Program,
  type StridedValue,
} from "../backends/program.ts";

function call(b: Backend, c: KernelCall, v: readonly (BackendBuffer | undefined)[]): BackendBuffer {
  const s = (x: StridedValue): StridedInput => ({ buf: v[x.value]!, strides: x.strides });
  switch (c.kernel) {
    case "fill":
      return b.fill(c.dtype, c.size, c.value);
    case "unary":
      return b.unary(c.op, v[c.x]!, c.outDtype);
    case "binary":
      return b.binary(c.op, s(c.a), s(c.b), c.outShape, c.outDtype);
    case "where":
      return b.where(s(c.cond), s(c.a), s(c.b), c.outShape, c.dtype);
    case "cast":
      return b.cast(v[c.x]!, c.dtype);
    case "reduce":
      return b.reduce(c.op, v[c.x]!, c.outer, c.reduce, c.inner);
    case "matmul":
      return b.matmul(v[c.a]!, v[c.b]!, c.spec);
    case "strided":
      return b.strided(v[c.x]!, c.outShape, c.strides, c.offset);
    case "pad":
      return b.pad(v[c.x]!, c.shape, c.before, c.after, c.value);
    case "concat":
      return b.concat(c.xs.map((x) => v[x]!), c.outer, c.widths);
    case "gather":
      return b.gather(v[c.table]!, c.rows, c.rowSize, v[c.idx]!);
    case "scatterAdd":
      return b.scatterAdd(v[c.idx]!, v[c.upd]!, c.rows, c.rowSize);
    case "random":
      return b.random(c.dist, c.key, c.size);
    case "fused":
      return fusedByKernels(b, c, (id) => v[id]!);
    case "composite":
      return compositeByKernels(b, c, (id) => v[id]!);
  }
}

/** A program replayed through `backend`'s kernels. Constants are uploaded on the first run and kept until dispose. */
export function interpret(backend: Backend, program: Program): CompiledProgram {
  let constants: BackendBuffer[] | null = null;
  const { inputs, steps, lastUse, outputs } = program;
  return {
    run(args) {
      if (args.length !== inputs) throw new Error(`jit: program expects ${inputs} inputs, got ${args.length}`);
      constants ??= program.constants.map((c) => backend.upload(c.data, program.values[c.id].dtype));
      const v: (BackendBuffer | undefined)[] = new Array(program.values.length);
      for (let i = 0; i < inputs; i++) v[i] = args[i];
      program.constants.forEach((c, i) => v[c.id] = constants![i]);
      let i = 0;
      try {
        for (; i < steps.length; i++) {
          v[steps[i].out] = call(backend, steps[i].call, v);
          for (const x of lastUse[i]) {
            backend.free(v[x]!);
            v[x] = undefined;
          }
        }
      } catch (e) {
        // Free what this run made (inputs and constants are not ours to free).
        for (let k = 0; k < i; k++) {
          const out = steps[k].out;
          if (v[out]) backend.free(v[out]!);
        }
        throw e;
      }
      return outputs.map((o) => v[o]!);
    },
    dispose() {
      for (const c of constants ?? []) backend.free(c);
      constants = null;
    },
  };
}
