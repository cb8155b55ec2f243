/**
 * The CPU backend. Buffers live in the engine's one WebAssembly memory (./heap.ts) and the hot kernels
 * (float32 elementwise with broadcast strides, where, strided copies, reductions, matmul) run in place
 * there, in WebAssembly SIMD (./wasm/). Everything else, and everything where WebAssembly SIMD is missing
 * or a buffer did not fit in the 4 GiB wasm32 memory (it then lives in a plain typed array), runs the
 * TypeScript kernels (./kernels.ts), which are the reference.
 * @module
 */
import type { Backend, BackendBuffer, BinaryOp, MatmulSpec, ReduceOp, StridedInput, UnaryOp } from "../backend.ts";
import { arrayFor, type DType, type TypedArray } from "../../core/dtype.ts";
import { sizeOf, stridesOf } from "../../core/shape.ts";
import * as k from "./kernels.ts";
import { matmulF32, WASM_MIN_MNK } from "./matmul.ts";
import { DESC_BYTES, type Engine, engine } from "./wasm/engine.ts";
import { type Blas, blasFor } from "./wasm/blas.ts";
import { ensureScratch, mainScratch, matmulArgs, packBytes } from "./wasm/kernel.ts";
import { cpuThreads, KERNEL, poolFor, splitRange } from "./wasm/pool.ts";
import { PART_WORDS, runGather, runKernel, setBlasSource } from "./wasm/pool_protocol.ts";
import { CpuBuffer } from "./buffer.ts";
import { compileProgram, DESC_PART_BYTES, type KernelSink, type MakeParts, PARTS_PER_THREAD } from "./compile.ts";
import {
  type CompiledProgram,
  compositeByKernels,
  type CompositeCall,
  fusedByKernels,
  type FusedCall,
  type KernelCall,
  type Program,
  type ValueId,
} from "../program.ts";

const BYTES: Record<DType, number> = { float32: 4, int32: 4, bool: 1 };

/** Kernels smaller than this (elements; multiply-adds for matmul) run on the calling thread alone. */
const PARALLEL_MIN_ELEMENTS = 1 << 15;
const PARALLEL_MIN_MACS = 1 << 20;
/**
 * Vector products split from a smaller size: they stream their weights (decode), so two threads read them
 * at twice the rate. With the pool's spin handoff, splitting the 15M shape's layer products (≥ 2¹⁶ here)
 * took its compiled decode step on 2 threads from a median 264 to 363 tokens/s (7 pairs, farm-bench).
 */
const PARALLEL_MIN_GEMV_MACS = 1 << 16;
/**
 * W's bytes below which a vector product not cut into lanes (x·W by columns; rows of a W under STREAMED_W_BYTES)
 * is cut into half the usual parts (two a thread). Measured where streamed rows were still parts: the 15M shape's
 * layer products (0.3–1.8 MB) decoded 1.04–1.05× faster so (four parts a thread: shorter streams, more claims),
 * the 37 MB classifier not (backends/README.md, "Decode on Zen 4"); streamed rows are lanes now.
 */
const FEWER_PARTS_W_BYTES = 1 << 22;
/** W's bytes from which a vector product's rows go four at a time (gemv's transW 2): weights read once a token. */
const STREAMED_W_BYTES = 1 << 18;

/** Options of {@link CpuBackend}. */
export interface CpuBackendOptions {
  /** false: every buffer in a typed array and only the TypeScript kernels (the reference). Default true. */
  useEngine?: boolean;
  /** Smallest kernel (elements) split between threads (default 2¹⁵; tests lower it to split everything). */
  parallelMinElements?: number;
  /** Smallest matmul (multiply-adds) split between threads (default 2²⁰). */
  parallelMinMacs?: number;
  /** Smallest vector product (M = 1 or N = 1, multiply-adds) split between threads (default 2¹⁶, or less with a lower `parallelMinMacs`). */
  parallelMinGemvMacs?: number;
  /**
   * How a compiled program dispatches its kernels: "wasm" (default), an instruction loop inside the module over
   * runs of prepared calls, or "js", one JavaScript call per kernel; "wasm" measured 1.1–1.2× on decode (see
   * backends/README.md).
   */
  programLoop?: "js" | "wasm";
  /**
   * Large matrix and vector products on a system BLAS where one is found (default true; needs FFI, so `-A`;
   * KNOT_BLAS=0 turns it off everywhere): see backends/README.md, "System BLAS".
   */
  blas?: boolean;
}

/** Op codes of the wasm kernels (elementwise.as.ts). */
const BINARY_CODE: Record<BinaryOp, number> = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  pow: 4,
  maximum: 5,
  minimum: 6,
  equal: 7,
  notEqual: 8,
  less: 9,
  lessEqual: 10,
  greater: 11,
  greaterEqual: 12,
};
const UNARY_CODE: Partial<Record<UnaryOp, number>> = {
  neg: 0,
  exp: 1,
  log: 2,
  sqrt: 3,
  rsqrt: 4,
  abs: 5,
  sign: 6,
  tanh: 7,
  sigmoid: 8,
  silu: 9,
  gelu: 10,
  square: 11,
  sin: 12,
  cos: 13,
};
const REDUCE_CODE: Record<ReduceOp, number> = { sum: 0, max: 1, min: 2, argmax: 3, logsumexp: 4 };

/** Dims and per-operand strides after merging contiguous axes; rank ≥ 1. */
function layout(shape: readonly number[], strides: readonly (readonly number[])[]): [number[], number[][]] {
  const [dims, st] = k.coalesce(shape, strides);
  return dims.length === 0 ? [[1], st.map(() => [0])] : [dims, st];
}

/** Element offsets of A and B in each product of a batched matmul spec, batch in row-major order. */
function batchOffsets(s: MatmulSpec): [number, number][] {
  const out: [number, number][] = [], idx = s.batchShape.map(() => 0);
  for (let n = 0, total = sizeOf(s.batchShape); n < total; n++) {
    out.push([
      idx.reduce((o, i, k) => o + i * s.aBatchStrides[k], 0),
      idx.reduce((o, i, k) => o + i * s.bBatchStrides[k], 0),
    ]);
    for (let k = idx.length - 1; k >= 0 && ++idx[k] === s.batchShape[k]; k--) idx[k] = 0;
  }
  return out;
}

/** Whether product n of a batched matmul spec starts its A at n·`size` (row-major batch, no broadcast). */
function rowsFollow(s: MatmulSpec, size: number): boolean {
  let stride = size;
  for (let i = s.batchShape.length - 1; i >= 0; i--) {
    if (s.batchShape[i] > 1 && s.aBatchStrides[i] !== stride) return false;
    stride *= s.batchShape[i];
  }
  return true;
}

/** The reference backend: the TypeScript kernels, with the wasm engine wherever it applies. */
export class CpuBackend implements Backend {
  readonly name = "cpu";
  #live = 0;
  readonly #e: Engine | null;

  readonly #minElements: number;
  readonly #minMacs: number;
  readonly #minGemvMacs: number;
  readonly #loop: "js" | "wasm";
  readonly #blas: Blas | null;
  /** Kernels of the public methods run at once. */
  readonly #now: KernelSink = {
    launch: (e, kernel, size, min, make, scratchBytes) => this.#run(e, kernel, size, min, make, scratchBytes),
    gather: (e, a, fail) => runGather(e.x, a, fail),
    js: (f) => f(),
    words: (w) => {
      const h = this.#e!.heap, bytes = Math.max(w.length * 4, 4), ptr = h.alloc(bytes);
      if (ptr >= 0) h.i32.set(w.map((v) => v | 0), ptr >>> 2), this.#blocks.push({ ptr, bytes });
      return ptr;
    },
  };
  /** Heap blocks of the eager kernel running now (see `KernelSink.words`), released when it returns. */
  readonly #blocks: { ptr: number; bytes: number }[] = [];
  /**
   * jit fuses elementwise chains for this backend where the engine runs them (see `fused`). Assignable, so
   * tests can fuse at small shapes (`minElements: 0`).
   */
  fuses?: Backend["fuses"];

  /** A cpu backend; `opts` can turn the wasm engine off or change when kernels split across threads. */
  constructor(opts: CpuBackendOptions = {}) {
    this.#e = opts.useEngine === false ? null : engine();
    this.#minElements = opts.parallelMinElements ?? PARALLEL_MIN_ELEMENTS;
    this.#minMacs = opts.parallelMinMacs ?? PARALLEL_MIN_MACS;
    this.#minGemvMacs = opts.parallelMinGemvMacs ?? Math.min(this.#minMacs, PARALLEL_MIN_GEMV_MACS);
    this.#loop = opts.programLoop ?? "wasm";
    this.#blas = this.#e && opts.blas !== false ? blasFor(this.#e.heap.memory) : null;
    if (this.#blas) setBlasSource(() => this.#blas);
    // Below 2¹⁴ elements the interpreter's fixed cost per call exceeds the kernel calls it saves: the stories260K
    // decode step (vectors of 64, attention over 8 × 256) ran 1,350–1,400 tokens/s fused throughout, 1,850–2,500
    // with this bound; the 15M training step, whose chains are ≥ 2¹⁸ elements, is unchanged.
    if (this.#e) {
      this.fuses = {
        reduce: true,
        minElements: 1 << 14,
        inPlaceWhere: true,
        composites: ["attention", "rmsNorm", "rope"],
      };
    }
  }

  /** The system BLAS large products run on (its library, and OpenBLAS's kernels), or null. */
  get blas(): string | null {
    return this.#blas?.name ?? null;
  }

  /** Which kernels run: the wasm engine build ("simd" or "fma"), or "typescript". */
  get kernels(): "simd" | "fma" | "typescript" {
    return this.#e?.variant ?? "typescript";
  }

  /** A new buffer; `minBytes` asks for more room than the elements need (matmul tile padding). */
  #new(dtype: DType, size: number, minBytes = 0): CpuBuffer {
    this.#live++;
    const bytes = Math.max(size * BYTES[dtype], minBytes);
    if (this.#e && size > 0) {
      const ptr = this.#e.heap.alloc(bytes);
      if (ptr >= 0) return new CpuBuffer(dtype, size, ptr, bytes, null, this.#e.heap);
    }
    return new CpuBuffer(dtype, size, -1, 0, arrayFor(dtype, size), null);
  }

  #buf(b: BackendBuffer): CpuBuffer {
    const buf = b as CpuBuffer;
    if (!(buf instanceof CpuBuffer)) throw new Error("cpu backend: got a buffer from another backend");
    if (buf.freed) throw new Error("cpu backend: buffer used after free");
    return buf;
  }

  /** Elements of `b` (a heap view: take it after any allocation in the same kernel). */
  #get(b: BackendBuffer): TypedArray {
    return this.#buf(b).data;
  }

  /** The engine, if every buffer is in its heap. */
  #wasm(...bufs: BackendBuffer[]): Engine | null {
    if (!this.#e) return null;
    for (const b of bufs) if (this.#buf(b).ptr < 0) return null;
    return this.#e;
  }

  /**
   * Runs a kernel in parts. `make(parts, descAt)` returns the arguments of up to `parts` parts (descAt(p):
   * a descriptor block of DESC_PART_BYTES for part p), or null to decline. A large kernel (`size` ≥ `min`)
   * with a pool is cut into a few parts per thread, which the threads take from a shared counter (so a
   * thread the OS delays does not hold the others back); otherwise its single part runs here.
   */
  #run(e: Engine, kernel: number, size: number, min: number, make: MakeParts, scratchBytes = 0): boolean {
    const pool = size >= min ? poolFor(e) : null;
    const h = e.heap;
    const parts = pool ? cpuThreads() * PARTS_PER_THREAD : 1;
    const descBytes = parts * DESC_PART_BYTES;
    const descs = pool ? h.alloc(descBytes) : -1;
    const inline = (args: number[][] | null) => {
      if (!args || (scratchBytes && !ensureScratch(e, mainScratch, scratchBytes))) return false;
      for (const a of args) runKernel(e.x, kernel, a, mainScratch.ptr);
      return true;
    };
    if (descs < 0) return inline(make(1, () => e.desc));
    let counter = -1, tableBytes = 0;
    try {
      const args = make(parts, (p) => {
        if (p >= parts) throw new Error(`cpu backend: internal: descriptor ${p} asked of ${parts}`);
        return descs + p * DESC_PART_BYTES;
      });
      if (!args || (scratchBytes && !ensureScratch(e, mainScratch, scratchBytes))) return false;
      // The table holds every part made, which may be more than `parts` (a batched matmul makes at least one
      // per product): sized after `make`, so no part is ever written past it into a neighbouring block.
      tableBytes = 64 + args.length * PART_WORDS * 4;
      counter = h.alloc(tableBytes);
      if (counter < 0) return inline(args);
      const table = counter + 64, words = h.i32;
      words[counter >>> 2] = 0;
      args.forEach((a, i) => words.set(a.map((v) => v | 0), (table >>> 2) + i * PART_WORDS));
      pool!.run(kernel, table, args.length, counter, scratchBytes, mainScratch.ptr);
      return true;
    } finally {
      if (counter >= 0) h.release(counter, tableBytes);
      h.release(descs, descBytes);
    }
  }

  /**
   * A kernel over a broadcast view (binary, where, strided copy), split along its outermost axis. Its
   * arguments are `lead`, each input's address, the output's, the descriptor's and the rank.
   */
  #strided(
    s: KernelSink,
    e: Engine,
    kernel: number,
    lead: number[],
    shape: readonly number[],
    inputs: { ptr: number; strides: readonly number[]; esz: number }[],
    out: number,
    outEsz: number,
    whole: (dims: readonly number[], strides: readonly (readonly number[])[]) => boolean = () => false,
  ): boolean {
    const [dims, st] = layout(shape, inputs.map((x) => x.strides));
    const rank = dims.length, descBytes = (inputs.length + 2) * rank * 4;
    if (descBytes > DESC_BYTES) return false;
    const row = dims.slice(1).reduce((x, y) => x * y, 1);
    // A descriptor too long for a part's block runs whole, in the engine's own block; so does a kernel whose
    // work is far below its size (`whole`).
    const size = descBytes > DESC_PART_BYTES || whole(dims, st) ? 0 : dims[0] * row;
    return s.launch(
      e,
      kernel,
      size,
      this.#minElements,
      (parts, descAt) =>
        splitRange(dims[0], Math.min(parts, dims[0]), rank === 1 ? 16 : 1).filter(([s0, s1]) => s1 > s0).map(
          ([s0, s1], p) => {
            const desc = descAt(p);
            const d = e.heap.i32, o = desc >>> 2;
            d.set([s1 - s0, ...dims.slice(1)], o);
            st.forEach((x, i) => d.set(x, o + (i + 1) * rank));
            const ptrs = inputs.map((x, i) => x.ptr + s0 * st[i][0] * x.esz);
            return [...lead, ...ptrs, out + s0 * row * outEsz, desc, rank];
          },
        ),
      0,
      descBytes + rank * 4, // the kernel keeps its multi-index after the descriptor
    );
  }

  upload(data: TypedArray, dtype: DType, transfer = false): BackendBuffer {
    const heapPtr = this.#e && data.length > 0 ? this.#e.heap.alloc(data.length * BYTES[dtype]) : -1;
    if (heapPtr < 0 && transfer && data instanceof arrayFor(dtype, 0).constructor) {
      // Not in the heap (no engine, or no room): the array is ours now; bools are normalised in place.
      if (dtype === "bool") { for (let i = 0; i < data.length; i++) data[i] = data[i] !== 0 ? 1 : 0; }
      this.#live++;
      return new CpuBuffer(dtype, data.length, -1, 0, data, null);
    }
    let b: CpuBuffer;
    if (heapPtr >= 0) {
      this.#live++;
      b = new CpuBuffer(dtype, data.length, heapPtr, data.length * BYTES[dtype], null, this.#e!.heap);
    } else b = this.#new(dtype, data.length);
    const out = b.data;
    if (dtype === "bool") { for (let i = 0; i < data.length; i++) out[i] = data[i] !== 0 ? 1 : 0; }
    else out.set(data);
    return b;
  }

  read(buf: BackendBuffer): Promise<TypedArray> {
    return Promise.resolve(this.#get(buf).slice());
  }

  /** Synchronous read-back (a copy), available on the CPU backend only. */
  readSync(buf: BackendBuffer): TypedArray {
    return this.#get(buf).slice();
  }

  free(buf: BackendBuffer): void {
    const b = buf as CpuBuffer;
    if (b.freed) throw new Error("cpu backend: buffer freed twice");
    b.freed = true;
    if (b.ptr >= 0) b.heap!.release(b.ptr, b.bytes);
    this.#live--;
  }

  liveBuffers(): number {
    return this.#live;
  }

  fill(dtype: DType, size: number, value: number): BackendBuffer {
    const b = this.#new(dtype, size);
    this.#fill(this.#now, b, value);
    return b;
  }

  #fill(s: KernelSink, b: CpuBuffer, value: number): void {
    const e = b.size > 0 ? this.#wasm(b) : null;
    if (e) {
      // Heap blocks are reused, so zeros are written too.
      s.launch(e, KERNEL.fill, 0, 1, () => [[b.ptr, b.size, bitsOf(b.dtype, value), BYTES[b.dtype]]], 0, 0);
    } else if (value !== 0) s.js(() => b.data.fill(value));
  }

  unary(op: UnaryOp, x: BackendBuffer, outDtype: DType): BackendBuffer {
    const out = this.#new(outDtype, x.size);
    this.#unary(this.#now, op, this.#buf(x), out);
    return out;
  }

  #unary(s: KernelSink, op: UnaryOp, x: CpuBuffer, out: CpuBuffer): void {
    const code = UNARY_CODE[op];
    const e = this.#wasm(x, out);
    if (e && code !== undefined && x.dtype === "float32" && out.dtype === "float32") {
      const px = x.ptr, po = out.ptr;
      s.launch(
        e,
        KERNEL.unary,
        x.size,
        this.#minElements,
        (parts) =>
          splitRange(x.size, parts, 16).filter(([s0, s1]) => s1 > s0).map(([s0, s1]) => [
            code,
            px + s0 * 4,
            po + s0 * 4,
            s1 - s0,
          ]),
        0,
        0,
      );
    } else s.js(() => k.unary(op, x.data, out.data));
  }

  binary(op: BinaryOp, a: StridedInput, b: StridedInput, outShape: readonly number[], outDtype: DType): BackendBuffer {
    const out = this.#new(outDtype, sizeOf(outShape));
    this.#binary(this.#now, op, this.#in(a), this.#in(b), outShape, out);
    return out;
  }

  /** A strided operand with its buffer checked. */
  #in(x: StridedInput): { buf: CpuBuffer; strides: readonly number[] } {
    return { buf: this.#buf(x.buf), strides: x.strides };
  }

  #binary(s: KernelSink, op: BinaryOp, a: Operand, b: Operand, outShape: readonly number[], out: CpuBuffer): void {
    if (out.size === 0) return;
    const e = this.#wasm(a.buf, b.buf, out);
    const code = BINARY_CODE[op];
    if (
      e && a.buf.dtype === "float32" && b.buf.dtype === "float32" && out.dtype === (code >= 7 ? "bool" : "float32")
    ) {
      const inputs = [a, b].map((x) => ({ ptr: x.buf.ptr, strides: x.strides, esz: 4 }));
      if (this.#strided(s, e, KERNEL.binary, [code], outShape, inputs, out.ptr, code >= 7 ? 1 : 4)) return;
    }
    if (
      e && a.buf.dtype === "int32" && b.buf.dtype === "int32" && op !== "pow" &&
      out.dtype === (code >= 7 ? "bool" : "int32")
    ) {
      const inputs = [a, b].map((x) => ({ ptr: x.buf.ptr, strides: x.strides, esz: 4 }));
      if (this.#strided(s, e, KERNEL.binaryI32, [code], outShape, inputs, out.ptr, code >= 7 ? 1 : 4)) return;
    }
    s.js(() => k.binary(op, a.buf.data, a.strides, b.buf.data, b.strides, outShape, out.data));
  }

  where(c: StridedInput, a: StridedInput, b: StridedInput, outShape: readonly number[], dtype: DType): BackendBuffer {
    const out = this.#new(dtype, sizeOf(outShape));
    this.#where(this.#now, this.#in(c), this.#in(a), this.#in(b), outShape, out);
    return out;
  }

  #where(s: KernelSink, c: Operand, a: Operand, b: Operand, outShape: readonly number[], out: CpuBuffer): void {
    if (out.size === 0) return;
    const e = this.#wasm(c.buf, a.buf, b.buf, out);
    const dtype = out.dtype;
    if (e && c.buf.dtype === "bool" && BYTES[dtype] === 4 && a.buf.dtype === dtype && b.buf.dtype === dtype) {
      const inputs = [c, a, b].map((x, i) => ({ ptr: x.buf.ptr, strides: x.strides, esz: i ? 4 : 1 }));
      // Writing over b with a condition constant along rows (a compiled KV-cache write), where32 copies only the
      // rows the condition picks: a few hundred bytes, not worth handing to other threads.
      const rowWrite = (d: readonly number[], st: readonly (readonly number[])[]) =>
        out.ptr === b.buf.ptr && d.length >= 2 && st[0][d.length - 1] === 0 && st[2][d.length - 1] === 1;
      if (this.#strided(s, e, KERNEL.where, [], outShape, inputs, out.ptr, 4, rowWrite)) return;
    }
    s.js(() => k.where(c.buf.data, c.strides, a.buf.data, a.strides, b.buf.data, b.strides, outShape, out.data));
  }

  cast(x: BackendBuffer, dtype: DType): BackendBuffer {
    const out = this.#new(dtype, x.size);
    this.#cast(this.#now, this.#buf(x), out);
    return out;
  }

  #cast(s: KernelSink, x: CpuBuffer, out: CpuBuffer): void {
    const dtype = out.dtype;
    const e = x.size > 0 ? this.#wasm(x, out) : null;
    if (e) {
      s.launch(e, KERNEL.cast, 0, 1, () => [[x.ptr, out.ptr, x.size, DTYPE_CODE[x.dtype], DTYPE_CODE[dtype]]], 0, 0);
      return;
    }
    s.js(() => {
      const src = x.data, dst = out.data;
      if (dtype === "bool") { for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0; // NaN → true
       } else if (dtype === "int32") { for (let i = 0; i < src.length; i++) dst[i] = Math.trunc(src[i]); }
      else dst.set(src);
    });
  }

  reduce(op: ReduceOp, x: BackendBuffer, outer: number, red: number, inner: number): BackendBuffer {
    const out = this.#new(op === "argmax" ? "int32" : x.dtype, outer * inner);
    this.#reduce(this.#now, op, this.#buf(x), outer, red, inner, out);
    return out;
  }

  #reduce(s: KernelSink, op: ReduceOp, x: CpuBuffer, outer: number, red: number, inner: number, out: CpuBuffer) {
    const e = this.#wasm(x, out);
    if (e && x.dtype === "float32" && outer * inner > 0) {
      const px = x.ptr, po = out.ptr, code = REDUCE_CODE[op];
      s.launch(
        e,
        KERNEL.reduce,
        outer * red * inner,
        this.#minElements,
        (parts) =>
          splitRange(outer, parts).filter(([o0, o1]) => o1 > o0).map((
            [o0, o1],
          ) => [code, px + o0 * red * inner * 4, po + o0 * inner * 4, o1 - o0, red, inner]),
        0,
        0,
      );
    } else s.js(() => k.reduce(op, x.data, outer, red, inner, out.data));
  }

  matmul(a: BackendBuffer, b: BackendBuffer, spec: MatmulSpec): BackendBuffer {
    const out = this.#new("float32", sizeOf(spec.batchShape) * spec.M * spec.N);
    this.#matmul(this.#now, this.#buf(a), this.#buf(b), spec, out);
    return out;
  }

  /**
   * A product on the system BLAS: each product of the batch cut into blocks of rows (or of columns, where N > M)
   * fixed by its shape alone, one BLAS call each, run by whichever thread takes it: the same calls whatever
   * the thread count, so the same bits (a different summation order from the wasm kernels, though).
   */
  #blasMatmul(
    sink: KernelSink,
    a: CpuBuffer,
    b: CpuBuffer,
    s: MatmulSpec,
    out: CpuBuffer,
    offsets: [number, number][],
  ): void {
    const { M, K, N, transA, transB } = s, e = this.#e!;
    const lda = transA ? M : K, ldb = transB ? K : N;
    const byRows = M >= N, extent = byRows ? M : N;
    const blocks = splitRange(extent, Math.min(8, Math.ceil(extent / 64)), 16).filter(([i0, i1]) => i1 > i0);
    const args: number[][] = [];
    offsets.forEach(([ao, bo], n) => {
      const A = a.ptr + ao * 4, B = b.ptr + bo * 4, C = out.ptr + n * M * N * 4;
      for (const [i0, i1] of blocks) {
        if (byRows) {
          const a0 = transA ? A + i0 * 4 : A + i0 * lda * 4;
          args.push([a0, B, C + i0 * N * 4, i1 - i0, N, K, lda, ldb, N, transA ? 1 : 0, transB ? 1 : 0]);
        } else {
          const b0 = transB ? B + i0 * ldb * 4 : B + i0 * 4;
          args.push([A, b0, C + i0 * 4, M, i1 - i0, K, lda, ldb, N, transA ? 1 : 0, transB ? 1 : 0]);
        }
      }
    });
    const macs = offsets.length * M * N * K;
    sink.launch(e, KERNEL.blasGemm, macs, this.#minMacs, () => args, 0, 0);
  }

  #matmul(sink: KernelSink, a: CpuBuffer, b: CpuBuffer, s: MatmulSpec, out: CpuBuffer): void {
    const batch = sizeOf(s.batchShape);
    const { M, K, N } = s;
    const plane = M * N;
    const big = M > 1 && N > 1 && K > 0 && M * N * K >= WASM_MIN_MNK;
    if (big && batch > 1 && !s.transA && s.bBatchStrides.every((x) => x === 0) && rowsFollow(s, M * K)) {
      // One B for the whole batch (a layer's weight) and A's products one after another: a single product of
      // batch·M rows, whose packed B serves every row block instead of being packed again for each product.
      // Each element is computed exactly as before.
      const one: MatmulSpec = { ...s, batchShape: [], aBatchStrides: [], bBatchStrides: [], M: batch * M };
      return this.#matmul(sink, a, b, one, out);
    }
    const offsets: [number, number][] = [];
    const idx = new Array<number>(s.batchShape.length).fill(0);
    for (let n = 0; n < batch; n++) {
      let ao = 0, bo = 0;
      for (let i = 0; i < idx.length; i++) {
        ao += idx[i] * s.aBatchStrides[i];
        bo += idx[i] * s.bBatchStrides[i];
      }
      offsets.push([ao, bo]);
      for (let i = idx.length - 1; i >= 0; i--) {
        if (++idx[i] < s.batchShape[i]) break;
        idx[i] = 0;
      }
    }
    // On the system BLAS from 2¹⁶ multiply-adds a product (below, a call costs about what the wasm kernels take;
    // the rank-8 adapter shapes gain 1.2–2×, bench/kernels/cpu_matmul_blas.ts). Never a vector product: the
    // engine's gemv streams the weights faster than the BLAS's (decode, backends/README.md).
    if (this.#blas && M !== 1 && N !== 1 && M * N * K >= 2 ** 16) {
      if (this.#wasm(a, b, out)) return this.#blasMatmul(sink, a, b, s, out, offsets);
    }
    // Vector products (decode: M = 1; matrix·vector: N = 1) in the wasm gemv, split over outputs.
    const ev = (M === 1 || N === 1) && K >= 8 ? this.#wasm(a, b, out) : null;
    if (ev) {
      const A = a.ptr, B = b.ptr;
      const transW = M === 1 ? s.transB : !s.transA;
      const ldw = M === 1 ? (s.transB ? K : N) : (s.transA ? M : K);
      const len = M === 1 ? N : M;
      if (batch > 1 && batch * K * len < this.#minMacs && batch * 12 <= DESC_BYTES) {
        // A small batch (attention over heads): a call per part, its products' offsets in the part's descriptor
        // block; parts are runs of whole products, so the same bits. It splits from half the vector products'
        // bound: the 15M shape's (6 heads × 48 × 128 positions) do, stories260K's (8 × 8 × 128) stay whole.
        const x = M === 1 ? A : B, w = M === 1 ? B : A, C = out.ptr;
        sink.launch(
          ev,
          KERNEL.gemvBatch,
          batch * 12 <= DESC_PART_BYTES ? batch * K * len : 0, // offsets past a part's block: one part
          this.#minGemvMacs / 2,
          (parts, descAt) =>
            splitRange(batch, Math.min(parts, batch)).filter(([n0, n1]) => n1 > n0).map(([n0, n1], p) => {
              const desc = descAt(p), d = ev.heap.i32;
              for (let n = n0; n < n1; n++) {
                const [ao, bo] = offsets[n];
                d.set([(M === 1 ? ao : bo) * 4, (M === 1 ? bo : ao) * 4, n * plane * 4], (desc >>> 2) + 3 * (n - n0));
              }
              return [x, w, C, K, len, ldw, transW ? 1 : 0, desc, n1 - n0];
            }),
          0,
          batch * 12,
        );
        return;
      }
      // Rows (x·Wᵀ) four at a time where W is large enough to be streamed from memory (gemv's transW 2), else
      // eight; the same bits either way. Streamed, a split product is one lane a thread (transW 3): each thread
      // takes its lane's rows from the front in short claims and, its own done, the others' from the back.
      const streamed = transW && K * len * 4 >= STREAMED_W_BYTES, rowsCode = transW ? (streamed ? 2 : 1) : 0;
      const cut = K * len * 4 < FEWER_PARTS_W_BYTES ? 2 : 1;
      offsets.forEach(([ao, bo], n) => {
        const x = M === 1 ? A + ao * 4 : B + bo * 4, w = M === 1 ? B + bo * 4 : A + ao * 4;
        const c = out.ptr + n * plane * 4;
        sink.launch(
          ev,
          KERNEL.gemv,
          K * len,
          this.#minGemvMacs,
          (parts) => {
            const lanes = streamed ? Math.ceil(parts / PARTS_PER_THREAD) : 0, code = lanes > 1 ? 3 : rowsCode;
            // A lane's words 8–9: its claim word (vector.as.ts gemvLane), written empty.
            return splitRange(len, lanes || Math.ceil(parts / cut), 16).filter(([j0, j1]) => j1 > j0).map((
              [j0, j1],
            ) => [x, w + (transW ? j0 * ldw : j0) * 4, c + j0 * 4, K, j1 - j0, ldw, code, 0, 0, 0]);
          },
          0,
          0,
        );
      });
      return;
    }
    const e = big ? this.#wasm(a, b, out) : null;
    if (e) {
      const lda = s.transA ? M : K, ldb = s.transB ? K : N;
      const A = a.ptr, B = b.ptr, C = out.ptr;
      const scratch = { ptr: 0, bytes: 0 }; // packing buffers as offsets into the running thread's scratch
      // Parts are whole products, or blocks of rows (or columns) of one: either way every output element is
      // computed by one thread, in the same order.
      const ok = sink.launch(
        e,
        KERNEL.matmul,
        batch * M * N * K,
        this.#minMacs,
        (parts) => {
          const per = Math.ceil(parts / batch);
          const byRows = M >= N;
          // Every block packs the whole shared operand again (op(B) for a block of rows, op(A) for a block of
          // columns): blocks of at least 256 rows (columns) keep that small beside the block's own work (the LM
          // head's [64 × 32000]·[32000 × 288] split 8 ways packed its 8 MB A 8 times; a layer's [1024 × 288]·
          // [288 × 768] packs its weight 4 times, not 8), yet as many blocks as threads where each still has 4
          // tiles.
          const extent = byRows ? M : N, threads = Math.ceil(parts / PARTS_PER_THREAD);
          const fit = Math.max(
            Math.floor(extent / 256),
            Math.min(threads, Math.floor(extent / (4 * (byRows ? e.MR : e.NR)))),
          );
          const chunks = Math.max(1, Math.min(per, fit));
          const args: number[][] = [];
          offsets.forEach(([ao, bo], n) => {
            const a0 = A + ao * 4, b0 = B + bo * 4, c0 = C + n * plane * 4;
            for (const [r0, r1] of splitRange(byRows ? M : N, chunks, byRows ? e.MR : e.NR)) {
              if (r1 <= r0) continue;
              args.push(
                byRows
                  ? matmulArgs(
                    e,
                    scratch,
                    a0 + (s.transA ? r0 : r0 * lda) * 4,
                    b0,
                    c0 + r0 * N * 4,
                    r1 - r0,
                    K,
                    N,
                    s.transA,
                    s.transB,
                    lda,
                    ldb,
                    N,
                  )
                  : matmulArgs(
                    e,
                    scratch,
                    a0,
                    b0 + (s.transB ? r0 * ldb : r0) * 4,
                    c0 + r0 * 4,
                    M,
                    K,
                    r1 - r0,
                    s.transA,
                    s.transB,
                    lda,
                    ldb,
                    N,
                  ),
              );
            }
          });
          return args;
        },
        packBytes(e, K, N),
        0,
      );
      if (ok) return; // else the heap has no room for packing scratch: the copying path below
    }
    sink.js(() => {
      const A = a.data as Float32Array, B = b.data as Float32Array, C = out.data as Float32Array;
      offsets.forEach(([ao, bo], n) => matmulF32(A, ao, B, bo, C, n * plane, M, K, N, s.transA, s.transB));
    });
  }

  strided(x: BackendBuffer, outShape: readonly number[], strides: readonly number[], offset: number): BackendBuffer {
    const out = this.#new(x.dtype, sizeOf(outShape));
    this.#stridedCopy(this.#now, this.#buf(x), outShape, strides, offset, out);
    return out;
  }

  #stridedCopy(
    s: KernelSink,
    x: CpuBuffer,
    outShape: readonly number[],
    strides: readonly number[],
    offset: number,
    out: CpuBuffer,
  ): void {
    if (out.size === 0) return;
    const e = this.#wasm(x, out);
    if (e && BYTES[x.dtype] === 4) {
      const inputs = [{ ptr: x.ptr + offset * 4, strides, esz: 4 }];
      if (this.#strided(s, e, KERNEL.strided, [], outShape, inputs, out.ptr, 4)) return;
    }
    s.js(() => k.strided(x.data, outShape, strides, offset, out.data));
  }

  pad(
    x: BackendBuffer,
    shape: readonly number[],
    before: readonly number[],
    after: readonly number[],
    value: number,
  ): BackendBuffer {
    const out = this.#new(x.dtype, sizeOf(shape.map((d, i) => d + before[i] + after[i])));
    this.#pad(this.#now, this.#buf(x), shape, before, after, value, out);
    return out;
  }

  #pad(
    s: KernelSink,
    x: CpuBuffer,
    shape: readonly number[],
    before: readonly number[],
    after: readonly number[],
    value: number,
    out: CpuBuffer,
  ): void {
    const e = x.size > 0 ? this.#wasm(x, out) : null;
    const rank = shape.length, outer = sizeOf(shape.slice(0, -2));
    if (e && rank > 0 && outer <= 64) {
      // Fill, then copy the input's rows (its last axis) into place: one copyRows per index of the axes
      // before the last two.
      this.#fill(s, out, value);
      const esz = BYTES[x.dtype], outShape = shape.map((d, i) => d + before[i] + after[i]);
      const os = stridesOf(outShape), rows = rank > 1 ? shape[rank - 2] : 1, width = shape[rank - 1];
      const base = before.reduce((acc, b, i) => acc + b * os[i], 0);
      const lead = shape.slice(0, -2), idx = lead.map(() => 0);
      for (let i = 0; i < outer; i++) {
        const src = x.ptr + i * rows * width * esz;
        const dst = out.ptr + (base + idx.reduce((acc, v, k) => acc + v * os[k], 0)) * esz;
        const dstStride = (rank > 1 ? os[rank - 2] : 0) * esz;
        s.launch(e, KERNEL.copyRows, 0, 1, () => [[src, dst, rows, width * esz, width * esz, dstStride]], 0, 0);
        for (let k = lead.length - 1; k >= 0 && ++idx[k] === lead[k]; k--) idx[k] = 0;
      }
      return;
    }
    s.js(() => k.pad(x.data, shape, before, after, value, out.data));
  }

  concat(xs: readonly BackendBuffer[], outer: number, widths: readonly number[]): BackendBuffer {
    const out = this.#new(xs[0].dtype, outer * widths.reduce((a, b) => a + b, 0));
    this.#concat(this.#now, xs.map((x) => this.#buf(x)), outer, widths, out);
    return out;
  }

  #concat(s: KernelSink, xs: CpuBuffer[], outer: number, widths: readonly number[], out: CpuBuffer): void {
    const e = out.size > 0 ? this.#wasm(out, ...xs) : null;
    if (e) {
      const esz = BYTES[out.dtype], total = widths.reduce((a, b) => a + b, 0) * esz;
      let col = 0;
      xs.forEach((x, i) => {
        const w = widths[i] * esz, dst = out.ptr + col;
        col += w;
        if (w > 0 && outer > 0) s.launch(e, KERNEL.copyRows, 0, 1, () => [[x.ptr, dst, outer, w, w, total]], 0, 0);
      });
      return;
    }
    s.js(() => k.concat(xs.map((x) => x.data), outer, widths, out.data));
  }

  gather(table: BackendBuffer, rows: number, rowSize: number, idx: BackendBuffer): BackendBuffer {
    const out = this.#new(table.dtype, idx.size * rowSize);
    try {
      this.#gather(this.#now, this.#buf(table), rows, rowSize, this.#buf(idx), out);
    } catch (e) {
      this.free(out);
      throw e;
    }
    return out;
  }

  #gather(s: KernelSink, table: CpuBuffer, rows: number, rowSize: number, idx: CpuBuffer, out: CpuBuffer): void {
    const e = out.size > 0 ? this.#wasm(table, idx, out) : null;
    if (!e) return s.js(() => k.gather(table.data, rows, rowSize, idx.data as Int32Array, out.data));
    // A bad index is an Error naming it: read where the kernel read it (a program's idx moves between runs).
    const args = [table.ptr, rows, rowSize * BYTES[table.dtype], idx.ptr, idx.size, out.ptr];
    s.gather(e, args, (a, at) => new Error(badIndex("take", e.heap.i32[(a[3] >>> 2) + at], at, rows)));
  }

  scatterAdd(idx: BackendBuffer, upd: BackendBuffer, rows: number, rowSize: number): BackendBuffer {
    const out = this.#new("float32", rows * rowSize);
    try {
      this.#scatterAdd(this.#now, this.#buf(idx), this.#buf(upd), rows, rowSize, out);
    } catch (e) {
      this.free(out);
      throw e;
    }
    return out;
  }

  #scatterAdd(s: KernelSink, idx: CpuBuffer, upd: CpuBuffer, rows: number, rowSize: number, out: CpuBuffer): void {
    const e = out.size > 0 ? this.#wasm(idx, upd, out) : null;
    s.js(() => {
      if (e) {
        const bad = e.x.scatterAddRows(idx.ptr, upd.ptr, rows, rowSize, idx.size, out.ptr);
        if (bad >= 0) throw new Error(badIndex("scatterAdd", e.heap.i32[(idx.ptr >>> 2) + bad], bad, rows));
        return;
      }
      const o = out.data as Float32Array;
      o.fill(0);
      k.scatterAdd(idx.data as Int32Array, upd.data as Float32Array, rows, rowSize, o);
    });
  }

  random(kind: "uniform" | "normal", key: readonly [number, number], size: number): BackendBuffer {
    const out = this.#new("float32", size);
    this.#random(this.#now, kind, key, out);
    return out;
  }

  #random(s: KernelSink, kind: "uniform" | "normal", key: readonly [number, number], out: CpuBuffer): void {
    const size = out.size;
    const e = size > 0 ? this.#wasm(out) : null;
    if (e) {
      const kindCode = kind === "uniform" ? 0 : 1, po = out.ptr;
      // Each thread's 32 bytes of threefry output sit at the start of its packing scratch.
      s.launch(
        e,
        KERNEL.random,
        size * 8,
        this.#minElements,
        (parts) =>
          splitRange(size, parts, 4).filter(([s0, s1]) => s1 > s0).map((
            [s0, s1],
          ) => [kindCode, key[0], key[1], s0, po + s0 * 4, s1 - s0, 0]),
        64,
        0,
      );
    } else s.js(() => k.random(kind, key[0], key[1], out.data as Float32Array));
  }

  /** Emits one kernel call of a program into `s`: operands `val(id)`, result written into `out`. */
  #emit(s: KernelSink, c: KernelCall, val: (id: ValueId) => CpuBuffer, out: CpuBuffer): void {
    const op = (x: { value: ValueId; strides: readonly number[] }): Operand => ({
      buf: val(x.value),
      strides: x.strides,
    });
    switch (c.kernel) {
      case "fill":
        return this.#fill(s, out, c.value);
      case "unary":
        return this.#unary(s, c.op, val(c.x), out);
      case "binary":
        return this.#binary(s, c.op, op(c.a), op(c.b), c.outShape, out);
      case "where":
        return this.#where(s, op(c.cond), op(c.a), op(c.b), c.outShape, out);
      case "cast":
        return this.#cast(s, val(c.x), out);
      case "reduce":
        return this.#reduce(s, c.op, val(c.x), c.outer, c.reduce, c.inner, out);
      case "matmul":
        return this.#matmul(s, val(c.a), val(c.b), c.spec, out);
      case "strided":
        return this.#stridedCopy(s, val(c.x), c.outShape, c.strides, c.offset, out);
      case "pad":
        return this.#pad(s, val(c.x), c.shape, c.before, c.after, c.value, out);
      case "concat":
        return this.#concat(s, c.xs.map(val), c.outer, c.widths, out);
      case "gather":
        return this.#gather(s, val(c.table), c.rows, c.rowSize, val(c.idx), out);
      case "scatterAdd":
        return this.#scatterAdd(s, val(c.idx), val(c.upd), c.rows, c.rowSize, out);
      case "random":
        return this.#random(s, c.dist, c.key, out);
      case "fused":
        return this.#fused(s, c, val, out);
      case "composite":
        return this.#composite(s, c, val, out);
    }
  }

  /** A composite (../program.ts) as the engine's kernel for it where that applies, else the kernels it stands for. */
  #composite(s: KernelSink, c: CompositeCall, val: (id: ValueId) => CpuBuffer, out: CpuBuffer): void {
    const done = c.op === "attention"
      ? this.#attention(s, c, val, out)
      : c.op === "rmsNorm"
      ? this.#rmsNorm(s, c, val, out)
      : this.#rope(s, c, val, out);
    if (done) return;
    s.js(() => {
      const r = compositeByKernels(this, c, val);
      out.data.set(this.#get(r));
      this.free(r);
    });
  }

  /** RMSNorm (a composite) as the engine's kernel (./wasm/composite.as.ts rmsNormRows), split by rows. */
  #rmsNorm(s: KernelSink, c: CompositeCall, val: (id: ValueId) => CpuBuffer, out: CpuBuffer): boolean {
    const [x, count, eps, w] = c.inputs.map(val), sum = c.calls[1];
    const e = this.#wasm(out, x, count, eps, w);
    if (!e || sum.kernel !== "reduce" || ![x, count, eps, w, out].every((b) => b.dtype === "float32")) return false;
    const rows = sum.outer, n = sum.reduce;
    return s.launch(
      e,
      KERNEL.rmsNorm,
      rows * n,
      this.#minElements,
      (parts) =>
        splitRange(rows, Math.min(parts, rows)).filter(([a, b]) => b > a).map(([a, b]) => [
          x.ptr + a * n * 4,
          count.ptr,
          eps.ptr,
          w.ptr,
          out.ptr + a * n * 4,
          b - a,
          n,
          0,
        ]),
      (16 * n + 32) * 4,
      0,
    );
  }

  /** RoPE (a composite) as the engine's kernel (./wasm/composite.as.ts ropeRows), split by rows. */
  #rope(s: KernelSink, c: CompositeCall, val: (id: ValueId) => CpuBuffer, out: CpuBuffer): boolean {
    const [x, cos, sin] = c.inputs.map(val), cat = c.calls.find((k) => k.kernel === "concat");
    const e = this.#wasm(out, x, cos, sin);
    if (!e || cat?.kernel !== "concat" || ![x, cos, sin, out].every((b) => b.dtype === "float32")) return false;
    const hd = 2 * cat.widths[0], rows = out.size / hd;
    return s.launch(
      e,
      KERNEL.rope,
      out.size,
      this.#minElements,
      (parts) =>
        splitRange(rows, Math.min(parts, rows)).filter(([a, b]) => b > a).map((
          [a, b],
        ) => [x.ptr + a * hd * 4, cos.ptr, sin.ptr, out.ptr + a * hd * 4, b - a, hd]),
      0,
      0,
    );
  }

  /**
   * Attention (a composite, ../program.ts) as the engine's attention kernel (./wasm/composite.as.ts attendRows), where
   * the kernels it stands for are the ones that kernel repeats: both products on the wasm vector kernels (M = 1,
   * K ≥ 8), float32, the mask one row broadcast over all; else those kernels.
   */
  #attention(s: KernelSink, c: CompositeCall, val: (id: ValueId) => CpuBuffer, out: CpuBuffer): boolean {
    const [q, kk, v, mask, scale, fill] = c.inputs.map(val);
    const [scores, , masked] = c.calls, context = c.calls[c.calls.length - 1];
    const e = this.#wasm(out, q, kk, v, mask, scale, fill);
    if (e && scores.kernel === "matmul" && context.kernel === "matmul" && masked.kernel === "where") {
      const a = scores.spec, b = context.spec, hd = a.K, S = a.N, rows = sizeOf(a.batchShape);
      const shape = masked.outShape, last = shape.length - 1;
      const ok = a.M === 1 && !a.transA && a.transB && b.M === 1 && b.K === S && b.N === hd && !b.transA &&
        !b.transB && `${a.batchShape}` === `${b.batchShape}` && hd >= 8 && S >= 8 &&
        rows * 16 <= DESC_BYTES && mask.dtype === "bool" &&
        [q, kk, v, scale, fill, out].every((x) => x.dtype === "float32") &&
        masked.cond.strides.every((st, i) => i === last ? st === 1 : st === 0 || shape[i] === 1);
      const ranOn = ok && s.launch(
        e,
        KERNEL.attention,
        rows * 16 <= DESC_PART_BYTES ? 2 * rows * S * hd : 0, // rows past a part's descriptor block: one part
        this.#minGemvMacs / 2,
        (parts, descAt) => {
          const at = batchOffsets(a), of = batchOffsets(b);
          return splitRange(rows, Math.min(parts, rows)).filter(([n0, n1]) => n1 > n0).map(([n0, n1], p) => {
            const d = descAt(p), words = e.heap.i32;
            for (let n = n0; n < n1; n++) {
              words.set([at[n][0] * 4, at[n][1] * 4, of[n][1] * 4, n * hd * 4], (d >>> 2) + 4 * (n - n0));
            }
            return [q.ptr, kk.ptr, v.ptr, out.ptr, hd, S, mask.ptr, scale.ptr, fill.ptr, d, n1 - n0, 0];
          });
        },
        (rows * S + 2 * rows + 16) * 4, // the scores of a part's rows (at most all of them), their maxima and sums
        rows * 16,
      );
      return ranOn;
    }
    return false;
  }

  /**
   * A fused kernel (../program.ts) run by the engine's expression interpreter (./wasm/fused.as.ts); the
   * inputs are `get(id)` for each input's value. Bit-identical to the kernels it stands for.
   */
  fused(c: FusedCall, get: (id: ValueId) => BackendBuffer): BackendBuffer {
    const size = c.reduce ? c.reduce.outer * c.reduce.inner : sizeOf(c.outShape);
    const last = c.nodes[c.nodes.length - 1].dtype;
    const out = this.#new(c.reduce?.op === "argmax" ? "int32" : last, size);
    try {
      this.#fused(this.#now, c, (id) => this.#buf(get(id)), out);
    } catch (e) {
      this.free(out);
      throw e;
    } finally {
      for (const b of this.#blocks.splice(0)) this.#e!.heap.release(b.ptr, b.bytes);
    }
    return out;
  }

  #fused(s: KernelSink, c: FusedCall, val: (id: ValueId) => CpuBuffer, out: CpuBuffer): void {
    const ins = c.inputs.map((x) => val(x.value));
    const e = out.size > 0 ? this.#wasm(out, ...ins) : null;
    const prog = e ? fusedProgram(c, ins) : null;
    const block = prog ? s.words(prog.words) : -1;
    if (e && prog && block >= 0) {
      const rows = c.reduce ? c.reduce.outer : sizeOf(c.outShape);
      const ok = s.launch(
        e,
        KERNEL.fused,
        sizeOf(c.outShape),
        this.#minElements,
        (parts) =>
          splitRange(rows, parts, c.reduce ? 1 : 16).filter(([a, b]) => b > a).map((
            [a, b],
          ) => [block, out.ptr, a, b, 0]),
        prog.scratchBytes,
        0,
      );
      if (ok) return;
    }
    // A node the engine does not run (or no heap room): the kernels it stands for, copied into place.
    s.js(() => {
      const r = fusedByKernels(this, c, val);
      out.data.set(this.#get(r));
      this.free(r);
    });
  }

  /**
   * Lowers a program (../program.ts) onto the engine: an arena planned by liveness, every kernel's arguments
   * and descriptors prepared once, `run` a loop over them (./compile.ts). Bit-identical to the eager kernels.
   */
  compile(program: Program): CompiledProgram {
    return compileProgram(program, {
      engine: this.#e,
      backend: this,
      loop: this.#loop,
      emit: (s, c, val, out) => this.#emit(s, c, val, out),
      alloc: (dtype, size) => this.#new(dtype, size),
      adopt: (from, dtype, size) => {
        if (from.freed) throw new Error("cpu backend: buffer used after free");
        from.freed = true;
        return new CpuBuffer(dtype, size, from.ptr, from.bytes, null, from.heap);
      },
    });
  }
}

/** Dtype codes of the wasm cast kernel. */
const DTYPE_CODE: Record<DType, number> = { float32: 0, int32: 1, bool: 2 };

/** Elements per chunk of the fused kernel: each live node's chunk of 4-byte elements stays in L1. */
const FUSED_CHUNK = 512;
/**
 * Elements a fused reduction produces before reducing them (whole [reduce, inner] blocks, at least one); longer
 * rows of a sum, max, min or argmax are folded chunk by chunk. A block past FUSED_MAX_BLOCK otherwise (a
 * logsumexp or a reduction over a middle axis that large) runs as the kernels it stands for.
 */
const FUSED_ROWS = 4096, FUSED_MAX_BLOCK = 1 << 20;

/**
 * The program of a fused kernel for the engine (the layout is in ./wasm/fused.as.ts), and the scratch it
 * takes per thread; null where a node has no engine form (then the kernels it stands for run).
 */
function fusedProgram(c: FusedCall, ins: CpuBuffer[]): { words: number[]; scratchBytes: number } | null {
  // The engine has no windowed reads (cpu `fuses` never asks for them).
  if (c.inputs.some((x) => x.window) || c.nodes.some((n) => n.op === "window")) return null;
  const [dims, st] = layout(c.outShape, c.inputs.map((x) => x.strides));
  const R = dims.length, N = c.nodes.length, dense = stridesOf(dims);
  const words = [R, N, c.inputs.length, FUSED_CHUNK, -1, 0, 0, 0, sizeOf(dims), 0, 0, 0, ...dims];
  const operands = c.nodes.map((n) =>
    n.op === "input" ? [] : n.op === "binary" ? [n.a, n.b] : n.op === "where" ? [n.cond, n.a, n.b] : [n.x]
  );
  // Inputs read only by float32 binary nodes may be read in place along a row (the binary row function takes
  // a step of 0 or 1), where the others are gathered into a chunk.
  const rowRead = c.inputs.map((_, i) => (st[i][R - 1] === 0 || st[i][R - 1] === 1) && c.nodes[N - 1].op !== "input");
  c.nodes.forEach((n, k) => {
    const f32 = n.op === "binary" && c.nodes[n.a].dtype === "float32";
    for (const o of operands[k]) {
      if (c.nodes[o].op === "input" && !f32) rowRead[(c.nodes[o] as { input: number }).input] = false;
    }
  });
  const hows = c.inputs.map((_, i) =>
    st[i].every((s, k) => s === dense[k]) ? 1 : st[i].every((s) => s === 0) ? 2 : rowRead[i] ? 3 : 0
  );
  c.inputs.forEach((x, i) => words.push(ins[i].ptr, BYTES[ins[i].dtype], x.offset, hows[i], ...st[i]));
  words[11] = dims[R - 1] >= FUSED_CHUNK / 2 && hows.includes(3) ? 1 : 0;
  // Scratch slots by liveness: a node's chunk is freed after its last reader (never reused by that reader).
  const lastRead = c.nodes.map(() => -1);
  operands.forEach((ops, k) => ops.forEach((o) => lastRead[o] = k));
  const free: number[] = [], held = c.nodes.map(() => -1), pinned = new Set<number>();
  let slots = 0;
  for (let k = 0; k < N; k++) {
    const n = c.nodes[k], ops = operands[k], from = ops.length ? c.nodes[ops[0]].dtype : n.dtype;
    let kind: number, fn = 0;
    if (n.op === "input") kind = 0, fn = 0;
    else if (n.op === "unary") {
      const code = UNARY_CODE[n.fn];
      if (code !== undefined && from === "float32" && n.dtype === "float32") kind = 1, fn = code;
      else if (n.fn === "logicalNot" && from === "bool" && n.dtype === "bool") kind = 7;
      else return null;
    } else if (n.op === "binary") {
      fn = BINARY_CODE[n.fn];
      if (n.dtype !== (fn >= 7 ? "bool" : from)) return null;
      if (from === "float32") kind = 2;
      else if (from === "int32" && n.fn !== "pow") kind = 3;
      else if (from === "bool" && fn >= 5) kind = 4;
      else return null;
    } else if (n.op === "where") {
      if (from !== "bool" || c.nodes[n.a].dtype !== n.dtype || c.nodes[n.b].dtype !== n.dtype) return null;
      kind = 5;
    } else kind = 6, fn = DTYPE_CODE[from] * 3 + DTYPE_CODE[n.dtype];
    // An input read in place holds no slot; a broadcast scalar holds its own for the whole kernel.
    const how = n.op === "input" ? hows[n.input] : 0;
    if (k < N - 1 && how !== 1) held[k] = how === 2 ? slots++ : free.length ? free.pop()! : slots++;
    const slot = k === N - 1 ? -1 : Math.max(held[k], 0);
    words.push(kind, fn, ops[0] ?? (n.op === "input" ? n.input : 0), ops[1] ?? 0, ops[2] ?? 0, slot, BYTES[n.dtype]);
    if (how === 2) pinned.add(k);
    for (const o of new Set(ops)) if (lastRead[o] === k && held[o] >= 0 && !pinned.has(o)) free.push(held[o]);
  }
  words[10] = slots;
  let rowBytes = 0;
  if (c.reduce) {
    if (c.nodes[N - 1].dtype !== "float32") return null;
    const { op, outer, reduce, inner } = c.reduce, block = reduce * inner;
    const streamed = block > FUSED_ROWS && inner === 1 && op !== "logsumexp";
    if (block > FUSED_MAX_BLOCK && !streamed) return null;
    const per = streamed ? 0 : Math.max(1, Math.floor(FUSED_ROWS / block));
    words.splice(4, 6, REDUCE_CODE[op], outer, reduce, inner, sizeOf(dims), per);
    rowBytes = streamed ? FUSED_CHUNK * 4 : per * block * 4;
  }
  return { words, scratchBytes: slots * FUSED_CHUNK * 4 + (2 * N + R) * 4 + rowBytes + 64 };
}

/** The bits an element of `dtype` holds after `value` is stored into a typed array of it. */
function bitsOf(dtype: DType, value: number): number {
  const a = arrayFor(dtype, 1);
  a[0] = value;
  return dtype === "float32" ? new Int32Array(a.buffer)[0] : a[0];
}

/** The reference kernels' message for an index out of range. */
function badIndex(op: string, v: number, i: number, rows: number): string {
  return `${op}: index ${v} at position ${i} is out of range [0, ${rows})`;
}

/** An operand read through broadcast strides. */
interface Operand {
  buf: CpuBuffer;
  strides: readonly number[];
}
