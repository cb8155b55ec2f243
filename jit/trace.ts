/**
 * The tracing backend: a {@link Backend} whose buffers are abstract values
 * (element count and dtype) and whose kernels append a step to a program
 * instead of computing. Every op in core/ops reaches a device only through
 * these kernels, so running a function with tensors on this backend records
 * exactly the kernel calls eager execution would make, with the same
 * arguments. Host data uploaded while tracing (`tensor`, scalars) becomes a
 * constant; reading values back is impossible and throws.
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
} from "../backends/backend.ts";
import type { KernelCall, StridedValue, ValueId, ValueInfo } from "../backends/program.ts";
import { arrayFor, type DType, type TypedArray } from "../core/dtype.ts";

/** The name of the tracing backend (core/ops name it in mixed-backend errors). */
export const TRACE_BACKEND = "jit";

/** A value of the trace standing in for a device buffer. */
export class TraceBuffer implements BackendBuffer {
  constructor(readonly tracer: TraceBackend, readonly id: ValueId, readonly size: number, readonly dtype: DType) {}
}

/** What the tracer knows of a value: an input, a constant, or the output of a call. */
export type Origin =
  | { readonly kind: "input"; readonly index: number }
  | { readonly kind: "constant"; readonly data: TypedArray }
  | { readonly kind: "call"; readonly call: KernelCall };

/** The message for a tensor that was made outside the traced function. */
export const CLOSURE_MESSAGE = "jit: the traced function uses a tensor created outside it (a closed-over tensor); " +
  "pass it as an argument of the jitted function instead";

/** Records kernel calls as steps over numbered values. */
export class TraceBackend implements Backend {
  readonly name = TRACE_BACKEND;
  readonly maxBufferBytes?: number;
  /** Per value: its info and origin, in creation order. */
  readonly values: { info: ValueInfo; origin: Origin }[] = [];
  #live = 0;

  constructor(readonly target: Backend, readonly fnName: string) {
    this.maxBufferBytes = target.maxBufferBytes;
  }

  #value(size: number, dtype: DType, origin: Origin): TraceBuffer {
    this.values.push({ info: { size, dtype }, origin });
    this.#live++;
    return new TraceBuffer(this, this.values.length - 1, size, dtype);
  }

  /** A new input value. */
  input(index: number, size: number, dtype: DType): TraceBuffer {
    return this.#value(size, dtype, { kind: "input", index });
  }

  #id(buf: BackendBuffer): ValueId {
    if (!(buf instanceof TraceBuffer) || buf.tracer !== this) throw new Error(CLOSURE_MESSAGE);
    return buf.id;
  }

  #strided(s: StridedInput): StridedValue {
    return { value: this.#id(s.buf), strides: [...s.strides] };
  }

  #call(call: KernelCall, size: number, dtype: DType): TraceBuffer {
    return this.#value(size, dtype, { kind: "call", call });
  }

  upload(data: TypedArray, dtype: DType): BackendBuffer {
    // The same conversion the backends make (bool is `!= 0`), on a copy: the caller may reuse its array.
    const copy = arrayFor(dtype, data.length);
    if (dtype === "bool") { for (let i = 0; i < data.length; i++) copy[i] = data[i] !== 0 ? 1 : 0; }
    else copy.set(data);
    return this.#value(data.length, dtype, { kind: "constant", data: copy });
  }

  read(): Promise<TypedArray> {
    throw new Error(
      `jit: ${this.fnName} reads a tensor's values while being traced (data(), item(), array(), or a branch on ` +
        `a value); a jitted function computes on tensors only: return the tensor and read it after the call, ` +
        `or mark the argument that decides the branch static (opts.static)`,
    );
  }

  free(buf: BackendBuffer): void {
    this.#id(buf);
    this.#live--;
  }

  liveBuffers(): number {
    return this.#live;
  }

  fill(dtype: DType, size: number, value: number): BackendBuffer {
    return this.#call({ kernel: "fill", dtype, size, value }, size, dtype);
  }
  unary(op: UnaryOp, x: BackendBuffer, outDtype: DType): BackendBuffer {
    return this.#call({ kernel: "unary", op, x: this.#id(x), outDtype }, x.size, outDtype);
  }
  binary(op: BinaryOp, a: StridedInput, b: StridedInput, outShape: readonly number[], outDtype: DType): BackendBuffer {
    const call: KernelCall = {
      kernel: "binary",
      op,
      a: this.#strided(a),
      b: this.#strided(b),
      outShape: [...outShape],
      outDtype,
    };
    return this.#call(call, sizeOf(outShape), outDtype);
  }
  where(
    cond: StridedInput,
    a: StridedInput,
    b: StridedInput,
    outShape: readonly number[],
    dtype: DType,
  ): BackendBuffer {
    const call: KernelCall = {
      kernel: "where",
      cond: this.#strided(cond),
      a: this.#strided(a),
      b: this.#strided(b),
      outShape: [...outShape],
      dtype,
    };
    return this.#call(call, sizeOf(outShape), dtype);
  }
  cast(x: BackendBuffer, dtype: DType): BackendBuffer {
    return this.#call({ kernel: "cast", x: this.#id(x), dtype }, x.size, dtype);
  }
  reduce(op: ReduceOp, x: BackendBuffer, outer: number, reduce: number, inner: number): BackendBuffer {
    const dtype: DType = op === "argmax" ? "int32" : x.dtype;
    return this.#call({ kernel: "reduce", op, x: this.#id(x), outer, reduce, inner }, outer * inner, dtype);
  }
  matmul(a: BackendBuffer, b: BackendBuffer, spec: MatmulSpec): BackendBuffer {
    const s: MatmulSpec = {
      ...spec,
      batchShape: [...spec.batchShape],
      aBatchStrides: [...spec.aBatchStrides],
      bBatchStrides: [...spec.bBatchStrides],
    };
    const size = sizeOf(spec.batchShape) * spec.M * spec.N;
    return this.#call({ kernel: "matmul", a: this.#id(a), b: this.#id(b), spec: s }, size, "float32");
  }
  strided(x: BackendBuffer, outShape: readonly number[], strides: readonly number[], offset: number): BackendBuffer {
    const call: KernelCall = {
      kernel: "strided",
      x: this.#id(x),
      outShape: [...outShape],
      strides: [...strides],
      offset,
    };
    return this.#call(call, sizeOf(outShape), x.dtype);
  }
  pad(
    x: BackendBuffer,
    shape: readonly number[],
    before: readonly number[],
    after: readonly number[],
    value: number,
  ): BackendBuffer {
    const call: KernelCall = {
      kernel: "pad",
      x: this.#id(x),
      shape: [...shape],
      before: [...before],
      after: [...after],
      value,
    };
    return this.#call(call, sizeOf(shape.map((d, k) => d + before[k] + after[k])), x.dtype);
  }
  concat(xs: readonly BackendBuffer[], outer: number, widths: readonly number[]): BackendBuffer {
    const call: KernelCall = { kernel: "concat", xs: xs.map((x) => this.#id(x)), outer, widths: [...widths] };
    return this.#call(call, outer * widths.reduce((s, w) => s + w, 0), xs[0].dtype);
  }
  gather(table: BackendBuffer, rows: number, rowSize: number, idx: BackendBuffer): BackendBuffer {
    const call: KernelCall = { kernel: "gather", table: this.#id(table), rows, rowSize, idx: this.#id(idx) };
    return this.#call(call, idx.size * rowSize, table.dtype);
  }
  scatterAdd(idx: BackendBuffer, upd: BackendBuffer, rows: number, rowSize: number): BackendBuffer {
    const call: KernelCall = { kernel: "scatterAdd", idx: this.#id(idx), upd: this.#id(upd), rows, rowSize };
    return this.#call(call, rows * rowSize, upd.dtype);
  }
  random(dist: "uniform" | "normal", key: readonly [number, number], size: number): BackendBuffer {
    return this.#call({ kernel: "random", dist, key: [key[0], key[1]], size }, size, "float32");
  }
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
