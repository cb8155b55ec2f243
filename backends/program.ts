/**
 * A traced program: the backend kernel calls of one function, in order, over
 * numbered values. `jit` produces it by running the function once on a
 * tracing backend (every op in core/ops reaches a backend only through the
 * kernels of backend.ts, so the kernel calls are the whole computation). A
 * backend may lower a program ({@link Backend.compile}) into something that
 * runs without per-op JavaScript; where it does not, jit replays the calls one
 * by one on the backend's ordinary kernels. Either way each kernel computes
 * exactly what the eager call computes, so results are bit-identical.
 * @module
 */
import type { Backend, BackendBuffer, BinaryOp, MatmulSpec, ReduceOp, StridedInput, UnaryOp } from "./backend.ts";
import type { DType, TypedArray } from "../core/dtype.ts";

/** A value of the program: its index in {@link Program.values}. */
export type ValueId = number;

/** What the program knows of a value: element count and dtype. */
export interface ValueInfo {
  /** Number of elements. */
  readonly size: number;
  /** Element type. */
  readonly dtype: DType;
}

/** A kernel operand read through broadcast strides (see `StridedInput`). */
export interface StridedValue {
  /** The value read. */
  readonly value: ValueId;
  /** Element strides for each output axis (0 on broadcast axes). */
  readonly strides: readonly number[];
}

/** One kernel call, with the same arguments as the method of `Backend` it names, values in place of buffers. */
export type KernelCall =
  | { readonly kernel: "fill"; readonly dtype: DType; readonly size: number; readonly value: number }
  | { readonly kernel: "unary"; readonly op: UnaryOp; readonly x: ValueId; readonly outDtype: DType }
  | {
    readonly kernel: "binary";
    readonly op: BinaryOp;
    readonly a: StridedValue;
    readonly b: StridedValue;
    readonly outShape: readonly number[];
    readonly outDtype: DType;
  }
  | {
    readonly kernel: "where";
    readonly cond: StridedValue;
    readonly a: StridedValue;
    readonly b: StridedValue;
    readonly outShape: readonly number[];
    readonly dtype: DType;
  }
  | { readonly kernel: "cast"; readonly x: ValueId; readonly dtype: DType }
  | {
    readonly kernel: "reduce";
    readonly op: ReduceOp;
    readonly x: ValueId;
    readonly outer: number;
    readonly reduce: number;
    readonly inner: number;
  }
  | { readonly kernel: "matmul"; readonly a: ValueId; readonly b: ValueId; readonly spec: MatmulSpec }
  | {
    readonly kernel: "strided";
    readonly x: ValueId;
    readonly outShape: readonly number[];
    readonly strides: readonly number[];
    readonly offset: number;
  }
  | {
    readonly kernel: "pad";
    readonly x: ValueId;
    readonly shape: readonly number[];
    readonly before: readonly number[];
    readonly after: readonly number[];
    readonly value: number;
  }
  | {
    readonly kernel: "concat";
    readonly xs: readonly ValueId[];
    readonly outer: number;
    readonly widths: readonly number[];
  }
  | {
    readonly kernel: "gather";
    readonly table: ValueId;
    readonly rows: number;
    readonly rowSize: number;
    readonly idx: ValueId;
  }
  | {
    readonly kernel: "scatterAdd";
    readonly idx: ValueId;
    readonly upd: ValueId;
    readonly rows: number;
    readonly rowSize: number;
  }
  | {
    readonly kernel: "random";
    readonly dist: "uniform" | "normal";
    readonly key: readonly [number, number];
    readonly size: number;
  }
  | FusedCall
  | CompositeCall;

/**
 * One node of a fused kernel's expression, evaluated per element of the
 * kernel's `outShape`: a read of one of its inputs, or an elementwise op of
 * earlier nodes (indices into {@link FusedCall.nodes}) with exactly the
 * semantics of the backend kernel it replaces (`unary`, `binary`, `where`,
 * `cast`), producing `dtype`.
 */
export type FusedNode =
  | {
    readonly op: "input";
    readonly input: number;
    readonly dtype: DType;
    /**
     * Where the input has a `window`: the node's value outside it — node `orElse` (an earlier node) where given,
     * else `fill` (0 where absent). A pad is one such node; a concatenation a chain of them, one per piece.
     */
    readonly fill?: number;
    readonly orElse?: number;
  }
  | { readonly op: "unary"; readonly fn: UnaryOp; readonly x: number; readonly dtype: DType }
  | { readonly op: "binary"; readonly fn: BinaryOp; readonly a: number; readonly b: number; readonly dtype: DType }
  | { readonly op: "where"; readonly cond: number; readonly a: number; readonly b: number; readonly dtype: DType }
  | { readonly op: "cast"; readonly x: number; readonly dtype: DType }
  | {
    /**
     * Node `x` where the element's coordinates c (of `outShape`) lie in the box lo ≤ c < hi, else the
     * fallback (`orElse` or `fill`, as for a windowed input): a pad or concatenation piece of a computed value.
     */
    readonly op: "window";
    readonly x: number;
    readonly lo: readonly number[];
    readonly hi: readonly number[];
    readonly dtype: DType;
    readonly fill?: number;
    readonly orElse?: number;
  };

/** A value read by a fused kernel: through element strides over its `outShape`, from an element offset. */
export interface FusedInput extends StridedValue {
  /** Element offset of index (0, …, 0) (negative only with a `window` that excludes it). */
  readonly offset: number;
  /**
   * Where present, the value is read only at coordinates c of `outShape` with lo[k] ≤ c[k] < hi[k] on every
   * axis (a pad's or a concatenation piece's box); elsewhere the node reading it takes its fallback (see
   * {@link FusedNode}). Only made for a backend whose `fuses.windows` is set.
   */
  readonly window?: { readonly lo: readonly number[]; readonly hi: readonly number[] };
}

/**
 * A chain of elementwise kernels fused into one (made by jit's fusion pass,
 * never by eager code): every element of `outShape` evaluates `nodes` in
 * order and the last node is the result — each node's float operations
 * exactly those of the kernel it replaces, so results are bit-identical to
 * the unfused calls. With `reduce`, the result is not stored but reduced as
 * `reduce(op, result, outer, reduce, inner)` would (the same order of
 * operations), the fused kernel's value then having `outer·inner` elements.
 */
export interface FusedCall {
  /** The kernel's name in a {@link KernelCall}. */
  readonly kernel: "fused";
  /** The values read; `input` nodes index this list. */
  readonly inputs: readonly FusedInput[];
  /** The shape the expression is evaluated over (row-major). */
  readonly outShape: readonly number[];
  /** The expression, in topological order; the last node is the result. */
  readonly nodes: readonly FusedNode[];
  /** Optional reduction of the result (outer · reduce · inner = the size of `outShape`). */
  readonly reduce?: { readonly op: ReduceOp; readonly outer: number; readonly reduce: number; readonly inner: number };
}

/**
 * The composites jit recognises (jit/composite.ts), each a run of kernels a backend may compute as one:
 * - `attention`: one query row per head over a cache — q·kᵀ (a matmul, M = 1), × a scale, `where(mask, ·,
 *   fill)`, softmax along the last axis (max, sub, exp, sum, div), · v; inputs q, k, v, the mask, the scale,
 *   the fill.
 * - `rmsNorm`: x · rsqrt(sum(x²)/n + eps) · weight over the last axis (square, sum, div, add, rsqrt, mul,
 *   mul); inputs x, n, eps, weight.
 * - `rope`: x·cos + rotate(x)·sin with rotate(x) = [−x₂, x₁], the halves of each row (two slices, neg,
 *   concat, mul, mul, add); inputs x, cos, sin.
 */
export type CompositeOp = "attention" | "rmsNorm" | "rope";

/**
 * A composite (made by jit's composite pass for a backend whose `fuses.composites` lists its op; never by eager
 * code): the kernels `calls` stand for, run in order, as one. `calls` read `inputs` as values 0, 1, … and the
 * result of call i as value `inputs.length + i`; the last call's result is the composite's. A backend's kernel
 * gives the bits of `calls` run one by one ({@link compositeByKernels}: the meaning, and the path where the
 * kernel does not apply).
 */
export interface CompositeCall {
  /** The kernel's name in a {@link KernelCall}. */
  readonly kernel: "composite";
  /** Which composite. */
  readonly op: CompositeOp;
  /** The values read (see {@link CompositeOp}). */
  readonly inputs: readonly ValueId[];
  /** The kernels it stands for, on local values (see above). */
  readonly calls: readonly KernelCall[];
}

/** The name of a kernel. */
export type KernelName = KernelCall["kernel"];

/** The values a call reads, in argument order. */
export function callInputs(c: KernelCall): ValueId[] {
  switch (c.kernel) {
    case "fill":
    case "random":
      return [];
    case "unary":
    case "cast":
    case "reduce":
    case "strided":
    case "pad":
      return [c.x];
    case "binary":
      return [c.a.value, c.b.value];
    case "where":
      return [c.cond.value, c.a.value, c.b.value];
    case "matmul":
      return [c.a, c.b];
    case "concat":
      return [...c.xs];
    case "gather":
      return [c.table, c.idx];
    case "scatterAdd":
      return [c.idx, c.upd];
    case "fused":
      return c.inputs.map((x) => x.value);
    case "composite":
      return [...c.inputs];
  }
}

/** `c` with every value it reads replaced by `f(value)`. */
export function mapCall(c: KernelCall, f: (v: ValueId) => ValueId): KernelCall {
  switch (c.kernel) {
    case "fill":
    case "random":
      return c;
    case "unary":
    case "cast":
    case "reduce":
    case "strided":
    case "pad":
      return { ...c, x: f(c.x) };
    case "binary":
      return { ...c, a: { ...c.a, value: f(c.a.value) }, b: { ...c.b, value: f(c.b.value) } };
    case "where":
      return {
        ...c,
        cond: { ...c.cond, value: f(c.cond.value) },
        a: { ...c.a, value: f(c.a.value) },
        b: { ...c.b, value: f(c.b.value) },
      };
    case "matmul":
      return { ...c, a: f(c.a), b: f(c.b) };
    case "concat":
      return { ...c, xs: c.xs.map(f) };
    case "gather":
      return { ...c, table: f(c.table), idx: f(c.idx) };
    case "scatterAdd":
      return { ...c, idx: f(c.idx), upd: f(c.upd) };
    case "fused":
      return { ...c, inputs: c.inputs.map((x) => ({ ...x, value: f(x.value) })) };
    case "composite":
      return { ...c, inputs: c.inputs.map(f) }; // its calls read local values
  }
}

/** One step: `values[out] = call(...)`. */
export interface Step {
  /** The kernel and its arguments. */
  readonly call: KernelCall;
  /** The value it defines. */
  readonly out: ValueId;
}

/**
 * A program. Values are numbered: first the inputs (0 … inputs − 1), then the
 * constants, then one value per step, in step order. Guarantees jit gives a
 * backend: every output is a value defined by a step (never an input or a
 * constant) and no value is output twice, so each returned buffer is new;
 * `lastUse` is filled (liveness).
 */
export interface Program {
  /** Info of every value, indexed by {@link ValueId}. */
  readonly values: readonly ValueInfo[];
  /** Number of inputs: values 0 … inputs − 1, bound to the buffers given to `run`, in order. */
  readonly inputs: number;
  /** Per input: donated (the program may overwrite or free its buffer after its last use; the caller never reads it again). */
  readonly donated: readonly boolean[];
  /** Constant values (tensors made inside the traced function from host data), uploaded once per compiled program. */
  readonly constants: readonly { readonly id: ValueId; readonly data: TypedArray }[];
  /** The kernel calls, in order. */
  readonly steps: readonly Step[];
  /** Values returned by `run`, in order (each defined by a step, each once). */
  readonly outputs: readonly ValueId[];
  /**
   * Per step: values whose last read is this step (their buffers may be
   * reused once it has run). Never lists an output, a constant, or an input
   * that is not donated.
   */
  readonly lastUse: readonly (readonly ValueId[])[];
}

/** A program lowered by a backend, ready to run many times. */
export interface CompiledProgram {
  /**
   * Runs the program on `inputs` (buffers of this backend matching the
   * program's input infos) and returns one new buffer per output, owned by the
   * caller. Donated inputs are consumed: the caller must not use or free them.
   */
  run(inputs: readonly BackendBuffer[]): BackendBuffer[];
  /** Releases what the program holds (constants, planned memory). Idempotent. */
  dispose(): void;
}

/**
 * A fused call run as the kernels it stands for (its meaning, and the path of
 * a backend without fused kernels): each input read into `outShape`, each node
 * one kernel over it, then the optional reduction.
 */
export function fusedByKernels(b: Backend, c: FusedCall, get: (id: number) => BackendBuffer): BackendBuffer {
  const made: BackendBuffer[] = [];
  const dense = (buf: BackendBuffer): StridedInput => ({ buf, strides: contiguous });
  const contiguous = c.outShape.map((_, k) => c.outShape.slice(k + 1).reduce((p, d) => p * d, 1));
  try {
    for (const n of c.nodes) {
      const at = (i: number) => dense(made[i]);
      switch (n.op) {
        case "input": {
          const x = c.inputs[n.input];
          if (!x.window) {
            made.push(b.strided(get(x.value), c.outShape, x.strides, x.offset));
            break;
          }
          // A windowed read: the box read through strides, padded to outShape with the fill, or laid over
          // the fallback node where a bool mask (the box of ones, padded with zeros) selects it.
          const { lo, hi } = x.window, box = hi.map((h, k) => h - lo[k]);
          const after = c.outShape.map((d, k) => d - hi[k]);
          const from = x.offset + lo.reduce((a, l, k) => a + l * x.strides[k], 0);
          const pad = (buf: BackendBuffer, value: number) => {
            try {
              return b.pad(buf, box, lo, after, value);
            } finally {
              b.free(buf);
            }
          };
          const padded = pad(b.strided(get(x.value), box, x.strides, from), n.fill ?? 0);
          if (n.orElse === undefined) {
            made.push(padded);
            break;
          }
          let mask: BackendBuffer | null = null;
          try {
            mask = pad(b.fill("bool", box.reduce((p, d) => p * d, 1), 1), 0);
            made.push(b.where(dense(mask), dense(padded), at(n.orElse), c.outShape, n.dtype));
          } finally {
            b.free(padded);
            if (mask) b.free(mask);
          }
          break;
        }
        case "unary":
          made.push(b.unary(n.fn, made[n.x], n.dtype));
          break;
        case "binary":
          made.push(b.binary(n.fn, at(n.a), at(n.b), c.outShape, n.dtype));
          break;
        case "where":
          made.push(b.where(at(n.cond), at(n.a), at(n.b), c.outShape, n.dtype));
          break;
        case "cast":
          made.push(b.cast(made[n.x], n.dtype));
          break;
        case "window":
          made.push(windowed(b, c.outShape, n, made[n.x], n.orElse === undefined ? null : made[n.orElse]));
          break;
      }
    }
    if (!c.reduce) return made.pop()!;
    const { op, outer, reduce, inner } = c.reduce;
    return b.reduce(op, made[made.length - 1], outer, reduce, inner);
  } finally {
    for (const m of made) b.free(m);
  }
}

/** A window node's value: `x` inside its box, the fallback outside (a where over a mask of the box). */
function windowed(
  b: Backend,
  shape: readonly number[],
  n: Extract<FusedNode, { op: "window" }>,
  x: BackendBuffer,
  orElse: BackendBuffer | null,
): BackendBuffer {
  const box = n.hi.map((h, k) => h - n.lo[k]), after = shape.map((d, k) => d - n.hi[k]);
  const dense = shape.map((_, k) => shape.slice(k + 1).reduce((p, d) => p * d, 1));
  const made: BackendBuffer[] = [];
  try {
    const ones = made[made.push(b.fill("bool", box.reduce((p, d) => p * d, 1), 1)) - 1];
    const mask = made[made.push(b.pad(ones, box, n.lo, after, 0)) - 1];
    const other = orElse ?? made[made.push(b.fill(n.dtype, shape.reduce((p, d) => p * d, 1), n.fill ?? 0)) - 1];
    const at = (buf: BackendBuffer) => ({ buf, strides: dense });
    return b.where(at(mask), at(x), at(other), shape, n.dtype);
  } finally {
    for (const m of made) b.free(m);
  }
}

/**
 * A composite run as the kernels it stands for (its meaning, and the path of a backend without its kernel):
 * each call of `c.calls` on the backend in order, every intermediate freed.
 */
export function compositeByKernels(b: Backend, c: CompositeCall, get: (id: number) => BackendBuffer): BackendBuffer {
  const made: BackendBuffer[] = [];
  const val = (id: number) => id < c.inputs.length ? get(c.inputs[id]) : made[id - c.inputs.length];
  try {
    for (const k of c.calls) made.push(callKernel(b, k, val));
    return made.pop()!;
  } finally {
    for (const m of made) b.free(m);
  }
}

/**
 * Calls the backend kernel a call names, operands `val(id)`: a fused call on the backend's own fused kernel where it
 * has one (cpu), else as the kernels it stands for; a composite as the kernels it stands for. The generic replay
 * of a program (jit/execute.ts, cpu's replay) and a composite's meaning.
 */
export function callKernel(b: Backend, c: KernelCall, val: (id: ValueId) => BackendBuffer): BackendBuffer {
  const op = (x: { value: ValueId; strides: readonly number[] }) => ({ buf: val(x.value), strides: x.strides });
  switch (c.kernel) {
    case "fill":
      return b.fill(c.dtype, c.size, c.value);
    case "unary":
      return b.unary(c.op, val(c.x), c.outDtype);
    case "binary":
      return b.binary(c.op, op(c.a), op(c.b), c.outShape, c.outDtype);
    case "where":
      return b.where(op(c.cond), op(c.a), op(c.b), c.outShape, c.dtype);
    case "cast":
      return b.cast(val(c.x), c.dtype);
    case "reduce":
      return b.reduce(c.op, val(c.x), c.outer, c.reduce, c.inner);
    case "matmul":
      return b.matmul(val(c.a), val(c.b), c.spec);
    case "strided":
      return b.strided(val(c.x), c.outShape, c.strides, c.offset);
    case "pad":
      return b.pad(val(c.x), c.shape, c.before, c.after, c.value);
    case "concat":
      return b.concat(c.xs.map(val), c.outer, c.widths);
    case "gather":
      return b.gather(val(c.table), c.rows, c.rowSize, val(c.idx));
    case "scatterAdd":
      return b.scatterAdd(val(c.idx), val(c.upd), c.rows, c.rowSize);
    case "random":
      return b.random(c.dist, c.key, c.size);
    case "fused": {
      // The backend's own fused kernel where it has one (cpu), else the kernels it stands for.
      const own = (b as { fused?: (c: FusedCall, val: (id: ValueId) => BackendBuffer) => BackendBuffer }).fused;
      return own ? own.call(b, c, val) : fusedByKernels(b, c, val);
    }
    case "composite":
      return compositeByKernels(b, c, val);
  }
}
