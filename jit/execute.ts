/**
 * The generic executor: runs a {@link Program} on a backend without a
 * `compile` of its own by calling its kernels step by step, exactly as eager
 * execution would, and freeing each value after its last use.
 * @module
 */
import type { Backend, BackendBuffer } from "../backends/backend.ts";
import { callKernel, type CompiledProgram, type Program } from "../backends/program.ts";

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
          v[steps[i].out] = callKernel(backend, steps[i].call, (id) => v[id]!);
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
