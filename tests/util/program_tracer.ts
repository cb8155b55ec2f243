/**
 * Builds a {@link Program} by hand for backend lowering tests: the kernels of
 * a {@link ProgramTracer} run eagerly on a backend (so the eager results come
 * with the program) and are recorded as steps; `finish(outputs)` numbers the
 * values as backends/program.ts requires and fills `lastUse`. Test-only: jit
 * traces from core; this traces code written directly against the kernels.
 * @module
 */
import type {
  Backend,
  BackendBuffer,
  BinaryOp,
  MatmulSpec,
  ReduceOp,
  StridedInput,
  UnaryOp,
} from "../../backends/backend.ts";
import {
  callInputs,
  fusedByKernels,
  type FusedCall,
  type KernelCall,
  type Program,
  type ValueId,
} from "../../backends/program.ts";
import type { DType, TypedArray } from "../../core/dtype.ts";

/** The kernel methods of a backend: what a step function written against kernels may call. */
export type Kernels = Pick<
  Backend,
  | "fill"
  | "unary"
  | "binary"
  | "where"
  | "cast"
  | "reduce"
  | "matmul"
  | "strided"
  | "pad"
  | "concat"
  | "gather"
  | "scatterAdd"
  | "random"
>;

type Id = (b: BackendBuffer) => ValueId;

/** See the module doc. */
export class ProgramTracer implements Kernels {
  readonly #inputs: { buf: BackendBuffer; donated: boolean }[] = [];
  readonly #constants: { buf: BackendBuffer; data: TypedArray }[] = [];
  readonly #steps: { out: BackendBuffer; call: (id: Id) => KernelCall }[] = [];

  /** Records on (and runs eagerly on) `backend`. */
  constructor(readonly backend: Backend) {}

  /** Declares `buf` the next input (in call order); returns it. */
  input(buf: BackendBuffer, donated = false): BackendBuffer {
    this.#inputs.push({ buf, donated });
    return buf;
  }

  /** A constant of the program (uploaded on the backend for the eager run). */
  constant(data: TypedArray, dtype: DType): BackendBuffer {
    const buf = this.backend.upload(data, dtype);
    this.#constants.push({ buf, data });
    return buf;
  }

  #step(out: BackendBuffer, call: (id: Id) => KernelCall): BackendBuffer {
    this.#steps.push({ out, call });
    return out;
  }

  #s(s: StridedInput, id: Id) {
    return { value: id(s.buf), strides: [...s.strides] };
  }

  fill(dtype: DType, size: number, value: number): BackendBuffer {
    return this.#step(this.backend.fill(dtype, size, value), () => ({ kernel: "fill", dtype, size, value }));
  }
  unary(op: UnaryOp, x: BackendBuffer, outDtype: DType): BackendBuffer {
    return this.#step(this.backend.unary(op, x, outDtype), (id) => ({ kernel: "unary", op, x: id(x), outDtype }));
  }
  binary(op: BinaryOp, a: StridedInput, b: StridedInput, outShape: readonly number[], outDtype: DType): BackendBuffer {
    return this.#step(
      this.backend.binary(op, a, b, outShape, outDtype),
      (id) => ({ kernel: "binary", op, a: this.#s(a, id), b: this.#s(b, id), outShape, outDtype }),
    );
  }
  where(c: StridedInput, a: StridedInput, b: StridedInput, outShape: readonly number[], dtype: DType): BackendBuffer {
    return this.#step(
      this.backend.where(c, a, b, outShape, dtype),
      (id) => ({ kernel: "where", cond: this.#s(c, id), a: this.#s(a, id), b: this.#s(b, id), outShape, dtype }),
    );
  }
  cast(x: BackendBuffer, dtype: DType): BackendBuffer {
    return this.#step(this.backend.cast(x, dtype), (id) => ({ kernel: "cast", x: id(x), dtype }));
  }
  reduce(op: ReduceOp, x: BackendBuffer, outer: number, reduce: number, inner: number): BackendBuffer {
    return this.#step(
      this.backend.reduce(op, x, outer, reduce, inner),
      (id) => ({ kernel: "reduce", op, x: id(x), outer, reduce, inner }),
    );
  }
  matmul(a: BackendBuffer, b: BackendBuffer, spec: MatmulSpec): BackendBuffer {
    return this.#step(this.backend.matmul(a, b, spec), (id) => ({ kernel: "matmul", a: id(a), b: id(b), spec }));
  }
  strided(x: BackendBuffer, outShape: readonly number[], strides: readonly number[], offset: number): BackendBuffer {
    return this.#step(
      this.backend.strided(x, outShape, strides, offset),
      (id) => ({ kernel: "strided", x: id(x), outShape, strides, offset }),
    );
  }
  pad(
    x: BackendBuffer,
    shape: readonly number[],
    before: readonly number[],
    after: readonly number[],
    value: number,
  ): BackendBuffer {
    return this.#step(
      this.backend.pad(x, shape, before, after, value),
      (id) => ({ kernel: "pad", x: id(x), shape, before, after, value }),
    );
  }
  concat(xs: readonly BackendBuffer[], outer: number, widths: readonly number[]): BackendBuffer {
    return this.#step(
      this.backend.concat(xs, outer, widths),
      (id) => ({ kernel: "concat", xs: xs.map(id), outer, widths }),
    );
  }
  gather(table: BackendBuffer, rows: number, rowSize: number, idx: BackendBuffer): BackendBuffer {
    return this.#step(
      this.backend.gather(table, rows, rowSize, idx),
      (id) => ({ kernel: "gather", table: id(table), rows, rowSize, idx: id(idx) }),
    );
  }
  scatterAdd(idx: BackendBuffer, upd: BackendBuffer, rows: number, rowSize: number): BackendBuffer {
    return this.#step(
      this.backend.scatterAdd(idx, upd, rows, rowSize),
      (id) => ({ kernel: "scatterAdd", idx: id(idx), upd: id(upd), rows, rowSize }),
    );
  }
  random(dist: "uniform" | "normal", key: readonly [number, number], size: number): BackendBuffer {
    return this.#step(this.backend.random(dist, key, size), () => ({ kernel: "random", dist, key, size }));
  }

  /** A fused call (inputs as buffers), run eagerly as the kernels it stands for ({@link fusedByKernels}). */
  fused(
    inputs: readonly (StridedInput & { offset: number; window?: FusedCall["inputs"][number]["window"] })[],
    call: Omit<FusedCall, "kernel" | "inputs">,
  ): BackendBuffer {
    const byBuf = (id: Id) => ({
      ...call,
      kernel: "fused" as const,
      inputs: inputs.map((x) => ({ ...this.#s(x, id), offset: x.offset, ...(x.window ? { window: x.window } : {}) })),
    });
    const bufs = inputs.map((x) => x.buf);
    const eager = fusedByKernels(this.backend, byBuf((b) => bufs.indexOf(b)), (i) => bufs[i]);
    return this.#step(eager, byBuf);
  }

  /** Frees the eager run's buffers (constants and every step's result) except `keep`; inputs stay the caller's. */
  freeAll(keep: readonly BackendBuffer[] = []): void {
    for (const b of [...this.#constants.map((c) => c.buf), ...this.#steps.map((s) => s.out)]) {
      if (!keep.includes(b)) this.backend.free(b);
    }
  }

  /** The program returning `outputs` (buffers made by this tracer's kernels). */
  finish(outputs: readonly BackendBuffer[]): Program {
    const ids = new Map<BackendBuffer, ValueId>();
    const values: { size: number; dtype: DType }[] = [];
    const number = (b: BackendBuffer) => {
      ids.set(b, values.length);
      values.push({ size: b.size, dtype: b.dtype });
    };
    for (const i of this.#inputs) number(i.buf);
    for (const c of this.#constants) number(c.buf);
    const id: Id = (b) => {
      const v = ids.get(b);
      if (v === undefined) throw new Error("ProgramTracer: a kernel read a buffer that is no input, constant or step");
      return v;
    };
    const steps = this.#steps.map((s) => {
      const call = s.call(id);
      number(s.out);
      return { call, out: ids.get(s.out)! };
    });
    const outs = outputs.map(id);
    const lastRead = new Array<number>(values.length).fill(-1);
    steps.forEach((s, t) => callInputs(s.call).forEach((v) => (lastRead[v] = t)));
    const nIn = this.#inputs.length, first = nIn + this.#constants.length;
    const lastUse = steps.map((_, t) =>
      values.map((_, v) => v).filter((v) =>
        lastRead[v] === t && !outs.includes(v) && (v >= first || (v < nIn && this.#inputs[v].donated))
      )
    );
    return {
      values,
      inputs: nIn,
      donated: this.#inputs.map((i) => i.donated),
      constants: this.#constants.map((c, i) => ({ id: nIn + i, data: c.data })),
      steps,
      outputs: outs,
      lastUse,
    };
  }
}
