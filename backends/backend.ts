/**
 * The narrow interface every backend implements: memory (allocate, write,
 * read, free) and the primitive kernels that all ops in `core/ops` are built
 * from. Kernels never consume their inputs and always return a fresh buffer.
 * Shapes reach a backend already checked and broadcast; a backend only computes.
 * See backends/README.md for the list and the contract of each primitive.
 * @module
 */
import type { DType, TypedArray } from "../core/dtype.ts";
import type { CompiledProgram, CompositeOp, Program } from "./program.ts";

/** An opaque device buffer holding `size` elements of `dtype`. */
export interface BackendBuffer {
  /** Number of elements. */
  readonly size: number;
  /** Element type. */
  readonly dtype: DType;
}

/** Elementwise functions of one argument. */
export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "abs"
  | "sign"
  | "tanh"
  | "sigmoid"
  | "silu"
  | "gelu"
  | "square"
  | "sin"
  | "cos"
  | "logicalNot";

/** Elementwise functions of two arguments; the comparisons return bool. */
export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  | "equal"
  | "notEqual"
  | "less"
  | "lessEqual"
  | "greater"
  | "greaterEqual";

/** Reductions over the middle axis of an [outer, reduce, inner] view. */
export type ReduceOp = "sum" | "max" | "min" | "argmax" | "logsumexp";

/** Operands of a binary or ternary kernel: a buffer read through broadcast strides. */
export interface StridedInput {
  /** The buffer read. */
  buf: BackendBuffer;
  /** Element strides for each output axis (0 on broadcast axes). */
  strides: readonly number[];
}

/** A batched matrix product: out[b] = op(A[b]) · op(B[b]), with broadcast batch strides. */
export interface MatmulSpec {
  /** Batch shape of the output (may be empty). */
  batchShape: readonly number[];
  /** Element stride of A per output batch axis (0 where A is broadcast). */
  aBatchStrides: readonly number[];
  /** Element stride of B per output batch axis (0 where B is broadcast). */
  bBatchStrides: readonly number[];
  /** Rows of the output. */
  M: number;
  /** The contracted dimension. */
  K: number;
  /** Columns of the output. */
  N: number;
  /** A is stored [K, M] per batch and read transposed. */
  transA: boolean;
  /** B is stored [N, K] per batch and read transposed. */
  transB: boolean;
}

/** The primitive set. Everything else in knot is composed from these. */
export interface Backend {
  /** Registered name, e.g. "cpu" or "webgpu". */
  readonly name: string;
  /** Largest buffer this backend can allocate, in bytes, if it has a ceiling (core refuses bigger results first). */
  readonly maxBufferBytes?: number;

  // --- memory ---
  /**
   * A new buffer holding `data` converted to `dtype`. With `transfer`, the
   * caller gives up `data` (it will never touch it again), so a host backend
   * may keep the array itself instead of copying it.
   */
  upload(data: TypedArray, dtype: DType, transfer?: boolean): BackendBuffer;
  /** Copies a buffer back to the host. The only read-back path. */
  read(buf: BackendBuffer): Promise<TypedArray>;
  /**
   * Optional synchronous read-back, for backends where it costs nothing (cpu).
   * Core uses it only to validate inputs (index ranges); where it is absent
   * those checks are skipped, so out-of-range indices give unspecified values.
   */
  readSync?(buf: BackendBuffer): TypedArray;
  /** Releases a buffer. Using it afterwards is an error. */
  free(buf: BackendBuffer): void;
  /** Number of buffers allocated and not yet freed (for leak tests). */
  liveBuffers(): number;

  // --- kernels ---
  /** A buffer of `size` elements all equal to `value`. */
  fill(dtype: DType, size: number, value: number): BackendBuffer;
  /** Elementwise unary op; output has `x`'s size and `outDtype`. */
  unary(op: UnaryOp, x: BackendBuffer, outDtype: DType): BackendBuffer;
  /** Elementwise binary op on broadcast operands; computed in the operands' dtype. */
  binary(op: BinaryOp, a: StridedInput, b: StridedInput, outShape: readonly number[], outDtype: DType): BackendBuffer;
  /** out = cond ? a : b, all broadcast to `outShape`. */
  where(cond: StridedInput, a: StridedInput, b: StridedInput, outShape: readonly number[], dtype: DType): BackendBuffer;
  /** Converts dtype (float→int truncates toward zero; anything→bool is `!= 0`). */
  cast(x: BackendBuffer, dtype: DType): BackendBuffer;
  /** Reduces the middle axis of x viewed as [outer, reduce, inner]; argmax returns int32. */
  reduce(op: ReduceOp, x: BackendBuffer, outer: number, reduce: number, inner: number): BackendBuffer;
  /** Batched matrix product, see {@link MatmulSpec}. float32 only. */
  matmul(a: BackendBuffer, b: BackendBuffer, spec: MatmulSpec): BackendBuffer;
  /** out[i] = x[offset + Σ idx_k·strides_k] for every multi-index of `outShape` (permute, slice, broadcast). */
  strided(x: BackendBuffer, outShape: readonly number[], strides: readonly number[], offset: number): BackendBuffer;
  /** Pads each axis of x (shape `shape`) with `before[k]`/`after[k]` elements equal to `value`. */
  pad(
    x: BackendBuffer,
    shape: readonly number[],
    before: readonly number[],
    after: readonly number[],
    value: number,
  ): BackendBuffer;
  /** Concatenates inputs viewed as [outer, widths[i]] along the second axis. */
  concat(xs: readonly BackendBuffer[], outer: number, widths: readonly number[]): BackendBuffer;
  /** out[i, :] = table[idx[i], :] for a table viewed as [rows, rowSize]; idx is int32. */
  gather(table: BackendBuffer, rows: number, rowSize: number, idx: BackendBuffer): BackendBuffer;
  /** out = zeros[rows, rowSize]; out[idx[i], :] += upd[i, :] (the gradient of gather). */
  scatterAdd(idx: BackendBuffer, upd: BackendBuffer, rows: number, rowSize: number): BackendBuffer;
  /**
   * float32 random numbers from the threefry2x32 counter-based generator: element i is
   * computed from threefry2x32(key, [0, i]) (see core/random.ts for the exact mapping).
   */
  random(kind: "uniform" | "normal", key: readonly [number, number], size: number): BackendBuffer;

  // --- programs (optional) ---
  /**
   * Lowers a traced program (see ./program.ts) into one that runs without a
   * JavaScript call per op: memory planned once, kernels prepared once. Where
   * absent, `jit` replays the program through the kernels above. Results must
   * be bit-identical to those kernels'.
   */
  compile?(program: Program): CompiledProgram;
  /**
   * Present where `compile` lowers fused kernels (`FusedCall`, see ./program.ts): jit then fuses the
   * elementwise chains of a program first (jit/fuse.ts), as far as these say.
   */
  readonly fuses?: {
    /** Fuse a group into the `reduce` that reads its result. */
    readonly reduce: boolean;
    /** Steps over fewer elements stay unfused (where a fused kernel's fixed cost exceeds the calls it saves). */
    readonly minElements?: number;
    /** Pads and concatenations become windowed inputs (`FusedInput.window`) of the kernels reading them. */
    readonly windows?: boolean;
    /**
     * A producer read through a broadcast, transposed or sliced view (by a strided copy, or an elementwise step's
     * broadcast operand) is computed at that view inside its reader's kernel, where its own reads compose with
     * it; a strided copy of a computed value is then one kernel.
     */
    readonly views?: boolean;
    /** A cheap producer read from several kernels is computed inside each of them (jit/fuse.ts `RECOMPUTE`). */
    readonly recompute?: boolean;
    /** The most distinct values a fused kernel reads: a producer that would take a kernel past it is stored. */
    readonly maxInputs?: number;
    /**
     * A `where` that is the last reader of its `b`, read element for element (a KV-cache write), stays a kernel
     * of its own: `compile` runs it over b's storage, writing only the rows it changes.
     */
    readonly inPlaceWhere?: boolean;
    /**
     * Composites (`CompositeOp`: decode attention, RMSNorm, RoPE) that `compile` runs as one kernel: jit makes
     * each such run of kernels one `CompositeCall` (jit/composite.ts).
     */
    readonly composites?: readonly CompositeOp[];
  };
}
