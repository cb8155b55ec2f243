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
import { sizeOf } from "../../core/shape.ts";
import * as k from "./kernels.ts";
import { matmulF32, WASM_MIN_MNK } from "./matmul.ts";
import { DESC_BYTES, type Engine, engine } from "./wasm/engine.ts";
import { ensureScratch, mainScratch, matmulArgs, packBytes } from "./wasm/kernel.ts";
import { cpuThreads, KERNEL, poolFor, splitRange } from "./wasm/pool.ts";
import { PART_WORDS, runKernel } from "./wasm/pool_protocol.ts";
import type { Heap } from "./heap.ts";

const BYTES: Record<DType, number> = { float32: 4, int32: 4, bool: 1 };

/** Kernels smaller than this (elements; multiply-adds for matmul) run on the calling thread alone. */
const PARALLEL_MIN_ELEMENTS = 1 << 15;
const PARALLEL_MIN_MACS = 1 << 20;
/** Parts a large kernel is cut into per thread: threads take parts as they finish (load balance). */
const PARTS_PER_THREAD = 4;
/** Bytes of a part's descriptor block (dims, strides, the kernel's index scratch). */
const DESC_PART_BYTES = 256;

/** Options of {@link CpuBackend}. */
export interface CpuBackendOptions {
  /** false: every buffer in a typed array and only the TypeScript kernels (the reference). Default true. */
  useEngine?: boolean;
  /** Smallest kernel (elements) split between threads (default 2¹⁵; tests lower it to split everything). */
  parallelMinElements?: number;
  /** Smallest matmul (multiply-adds) split between threads (default 2²⁰). */
  parallelMinMacs?: number;
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

/** A CPU buffer: a block of the engine heap (`ptr` ≥ 0) or, where that is unavailable, its own typed array. */
class CpuBuffer implements BackendBuffer {
  freed = false;
  constructor(
    readonly dtype: DType,
    readonly size: number,
    /** Byte address in the heap, or -1 when the buffer lives in `own`. */
    readonly ptr: number,
    /** Bytes asked of the heap (≥ size × element bytes; matmul outputs ask for tile padding). */
    readonly bytes: number,
    readonly own: TypedArray | null,
    readonly heap: Heap | null,
  ) {}

  /** The elements as a typed array: a view of the heap (valid until the next allocation) or the own array. */
  get data(): TypedArray {
    if (this.own) return this.own;
    const buf = this.heap!.memory.buffer;
    switch (this.dtype) {
      case "float32":
        return new Float32Array(buf, this.ptr, this.size);
      case "int32":
        return new Int32Array(buf, this.ptr, this.size);
      default:
        return new Uint8Array(buf, this.ptr, this.size);
    }
  }
}

/** Dims and per-operand strides after merging contiguous axes; rank ≥ 1. */
function layout(shape: readonly number[], strides: readonly (readonly number[])[]): [number[], number[][]] {
  const [dims, st] = k.coalesce(shape, strides);
  return dims.length === 0 ? [[1], st.map(() => [0])] : [dims, st];
}

/** The reference backend: the TypeScript kernels, with the wasm engine wherever it applies. */
export class CpuBackend implements Backend {
  readonly name = "cpu";
  #live = 0;
  readonly #e: Engine | null;

  readonly #minElements: number;
  readonly #minMacs: number;

  /** A cpu backend; `opts` can turn the wasm engine off or change when kernels split across threads. */
  constructor(opts: CpuBackendOptions = {}) {
    this.#e = opts.useEngine === false ? null : engine();
    this.#minElements = opts.parallelMinElements ?? PARALLEL_MIN_ELEMENTS;
    this.#minMacs = opts.parallelMinMacs ?? PARALLEL_MIN_MACS;
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
  #run(
    e: Engine,
    kernel: number,
    size: number,
    min: number,
    make: (parts: number, descAt: (p: number) => number) => number[][] | null,
    scratchBytes = 0,
  ): boolean {
    const pool = size >= min ? poolFor(e) : null;
    const h = e.heap;
    const parts = pool ? cpuThreads() * PARTS_PER_THREAD : 1;
    const arenaBytes = 64 + parts * (PART_WORDS * 4 + DESC_PART_BYTES);
    const arena = pool ? h.alloc(arenaBytes) : -1;
    if (arena < 0) {
      const args = make(1, () => e.desc);
      if (!args || (scratchBytes && !ensureScratch(e, mainScratch, scratchBytes))) return false;
      for (const a of args) runKernel(e.x, kernel, a, mainScratch.ptr);
      return true;
    }
    try {
      const table = arena + 64, descs = table + parts * PART_WORDS * 4;
      const args = make(parts, (p) => descs + p * DESC_PART_BYTES);
      if (!args || (scratchBytes && !ensureScratch(e, mainScratch, scratchBytes))) return false;
      const words = h.i32;
      words[arena >>> 2] = 0;
      args.forEach((a, i) => words.set(a.map((v) => v | 0), (table >>> 2) + i * PART_WORDS));
      pool!.run(kernel, table, args.length, arena, scratchBytes, mainScratch.ptr);
      return true;
    } finally {
      h.release(arena, arenaBytes);
    }
  }

  /**
   * A kernel over a broadcast view (binary, where, strided copy), split along its outermost axis. Its
   * arguments are `lead`, each input's address, the output's, the descriptor's and the rank.
   */
  #strided(
    e: Engine,
    kernel: number,
    lead: number[],
    shape: readonly number[],
    inputs: { ptr: number; strides: readonly number[]; esz: number }[],
    out: number,
    outEsz: number,
  ): boolean {
    const [dims, st] = layout(shape, inputs.map((x) => x.strides));
    const rank = dims.length, descBytes = (inputs.length + 2) * rank * 4;
    if (descBytes > DESC_BYTES) return false;
    const row = dims.slice(1).reduce((x, y) => x * y, 1);
    // A descriptor too long for a part's block runs whole, in the engine's own block.
    const size = descBytes > DESC_PART_BYTES ? 0 : dims[0] * row;
    return this.#run(
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
    // Heap blocks are reused, so zeros are written too.
    if (value !== 0 || b.ptr >= 0) b.data.fill(value);
    return b;
  }

  unary(op: UnaryOp, x: BackendBuffer, outDtype: DType): BackendBuffer {
    const out = this.#new(outDtype, x.size);
    const code = UNARY_CODE[op];
    const e = this.#wasm(x, out);
    if (e && code !== undefined && x.dtype === "float32" && outDtype === "float32") {
      const px = (x as CpuBuffer).ptr;
      this.#run(
        e,
        KERNEL.unary,
        x.size,
        this.#minElements,
        (parts) =>
          splitRange(x.size, parts, 16).filter(([s0, s1]) => s1 > s0).map(([s0, s1]) => [
            code,
            px + s0 * 4,
            out.ptr + s0 * 4,
            s1 - s0,
          ]),
      );
    } else k.unary(op, this.#get(x), out.data);
    return out;
  }

  binary(op: BinaryOp, a: StridedInput, b: StridedInput, outShape: readonly number[], outDtype: DType): BackendBuffer {
    const size = sizeOf(outShape);
    const out = this.#new(outDtype, size);
    if (size === 0) return out;
    const e = this.#wasm(a.buf, b.buf, out);
    const code = BINARY_CODE[op];
    if (
      e && a.buf.dtype === "float32" && b.buf.dtype === "float32" && outDtype === (code >= 7 ? "bool" : "float32")
    ) {
      const inputs = [a, b].map((x) => ({ ptr: (x.buf as CpuBuffer).ptr, strides: x.strides, esz: 4 }));
      if (this.#strided(e, KERNEL.binary, [code], outShape, inputs, out.ptr, code >= 7 ? 1 : 4)) return out;
    }
    k.binary(op, this.#get(a.buf), a.strides, this.#get(b.buf), b.strides, outShape, out.data);
    return out;
  }

  where(c: StridedInput, a: StridedInput, b: StridedInput, outShape: readonly number[], dtype: DType): BackendBuffer {
    const size = sizeOf(outShape);
    const out = this.#new(dtype, size);
    if (size === 0) return out;
    const e = this.#wasm(c.buf, a.buf, b.buf, out);
    if (e && c.buf.dtype === "bool" && BYTES[dtype] === 4 && a.buf.dtype === dtype && b.buf.dtype === dtype) {
      const inputs = [c, a, b].map((x, i) => ({ ptr: (x.buf as CpuBuffer).ptr, strides: x.strides, esz: i ? 4 : 1 }));
      if (this.#strided(e, KERNEL.where, [], outShape, inputs, out.ptr, 4)) return out;
    }
    k.where(this.#get(c.buf), c.strides, this.#get(a.buf), a.strides, this.#get(b.buf), b.strides, outShape, out.data);
    return out;
  }

  cast(x: BackendBuffer, dtype: DType): BackendBuffer {
    const out = this.#new(dtype, x.size);
    const src = this.#get(x), dst = out.data;
    if (dtype === "bool") { for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0; // NaN → true
     } else if (dtype === "int32") { for (let i = 0; i < src.length; i++) dst[i] = Math.trunc(src[i]); }
    else dst.set(src);
    return out;
  }

  reduce(op: ReduceOp, x: BackendBuffer, outer: number, red: number, inner: number): BackendBuffer {
    const dtype: DType = op === "argmax" ? "int32" : x.dtype;
    const out = this.#new(dtype, outer * inner);
    const e = this.#wasm(x, out);
    if (e && x.dtype === "float32" && outer * inner > 0) {
      const px = (x as CpuBuffer).ptr, code = REDUCE_CODE[op];
      this.#run(
        e,
        KERNEL.reduce,
        outer * red * inner,
        this.#minElements,
        (parts) =>
          splitRange(outer, parts).filter(([o0, o1]) => o1 > o0).map((
            [o0, o1],
          ) => [code, px + o0 * red * inner * 4, out.ptr + o0 * inner * 4, o1 - o0, red, inner]),
      );
    } else k.reduce(op, this.#get(x), outer, red, inner, out.data);
    return out;
  }

  matmul(a: BackendBuffer, b: BackendBuffer, s: MatmulSpec): BackendBuffer {
    const batch = sizeOf(s.batchShape);
    const { M, K, N } = s;
    const plane = M * N;
    const big = M > 1 && N > 1 && K > 0 && M * N * K >= WASM_MIN_MNK;
    const out = this.#new("float32", batch * plane);
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
    // Vector products (decode: M = 1; matrix·vector: N = 1) in the wasm gemv, split over outputs.
    const ev = (M === 1 || N === 1) && K >= 8 ? this.#wasm(a, b, out) : null;
    if (ev) {
      const A = (a as CpuBuffer).ptr, B = (b as CpuBuffer).ptr;
      offsets.forEach(([ao, bo], n) => {
        const x = M === 1 ? A + ao * 4 : B + bo * 4, w = M === 1 ? B + bo * 4 : A + ao * 4;
        const transW = M === 1 ? s.transB : !s.transA;
        const ldw = M === 1 ? (s.transB ? K : N) : (s.transA ? M : K);
        const len = M === 1 ? N : M, c = out.ptr + n * plane * 4;
        this.#run(
          ev,
          KERNEL.gemv,
          K * len,
          this.#minMacs,
          (parts) =>
            splitRange(len, parts, 16).filter(([j0, j1]) => j1 > j0).map((
              [j0, j1],
            ) => [x, w + (transW ? j0 * ldw : j0) * 4, c + j0 * 4, K, j1 - j0, ldw, transW ? 1 : 0]),
        );
      });
      return out;
    }
    const e = big ? this.#wasm(a, b, out) : null;
    let n = 0;
    if (e) {
      const lda = s.transA ? M : K, ldb = s.transB ? K : N;
      const A = (a as CpuBuffer).ptr, B = (b as CpuBuffer).ptr;
      const scratch = { ptr: 0, bytes: 0 }; // packing buffers as offsets into the running thread's scratch
      // Parts are whole products, or blocks of rows (or columns) of one: either way every output element is
      // computed by one thread, in the same order.
      const ok = this.#run(e, KERNEL.matmul, batch * M * N * K, this.#minMacs, (parts) => {
        const per = Math.ceil(parts / batch);
        const byRows = M >= N;
        // Blocks of at least 4 tiles, so that repacking the shared operand stays small.
        const chunks = Math.max(1, Math.min(per, Math.floor(byRows ? M / (4 * e.MR) : N / (4 * e.NR))));
        const args: number[][] = [];
        offsets.forEach(([ao, bo], n) => {
          const a0 = A + ao * 4, b0 = B + bo * 4, c0 = out.ptr + n * plane * 4;
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
      }, packBytes(e, K, N));
      if (ok) n = batch; // else the heap has no room for packing scratch: the copying path below
    }
    for (; n < batch; n++) {
      const [ao, bo] = offsets[n];
      const A = this.#get(a) as Float32Array, B = this.#get(b) as Float32Array;
      matmulF32(A, ao, B, bo, out.data as Float32Array, n * plane, M, K, N, s.transA, s.transB);
    }
    return out;
  }

  strided(x: BackendBuffer, outShape: readonly number[], strides: readonly number[], offset: number): BackendBuffer {
    const size = sizeOf(outShape);
    const out = this.#new(x.dtype, size);
    if (size === 0) return out;
    const e = this.#wasm(x, out);
    if (e && BYTES[x.dtype] === 4) {
      const inputs = [{ ptr: (x as CpuBuffer).ptr + offset * 4, strides, esz: 4 }];
      if (this.#strided(e, KERNEL.strided, [], outShape, inputs, out.ptr, 4)) return out;
    }
    k.strided(this.#get(x), outShape, strides, offset, out.data);
    return out;
  }

  pad(
    x: BackendBuffer,
    shape: readonly number[],
    before: readonly number[],
    after: readonly number[],
    value: number,
  ): BackendBuffer {
    const out = this.#new(x.dtype, sizeOf(shape.map((d, i) => d + before[i] + after[i])));
    k.pad(this.#get(x), shape, before, after, value, out.data);
    return out;
  }

  concat(xs: readonly BackendBuffer[], outer: number, widths: readonly number[]): BackendBuffer {
    const out = this.#new(xs[0].dtype, outer * widths.reduce((a, b) => a + b, 0));
    k.concat(xs.map((x) => this.#get(x)), outer, widths, out.data);
    return out;
  }

  gather(table: BackendBuffer, rows: number, rowSize: number, idx: BackendBuffer): BackendBuffer {
    const out = this.#new(table.dtype, idx.size * rowSize);
    try {
      k.gather(this.#get(table), rows, rowSize, this.#get(idx) as Int32Array, out.data);
    } catch (e) {
      this.free(out);
      throw e;
    }
    return out;
  }

  scatterAdd(idx: BackendBuffer, upd: BackendBuffer, rows: number, rowSize: number): BackendBuffer {
    const out = this.#new("float32", rows * rowSize);
    const o = out.data as Float32Array;
    o.fill(0);
    try {
      k.scatterAdd(this.#get(idx) as Int32Array, this.#get(upd) as Float32Array, rows, rowSize, o);
    } catch (e) {
      this.free(out);
      throw e;
    }
    return out;
  }

  random(kind: "uniform" | "normal", key: readonly [number, number], size: number): BackendBuffer {
    const out = this.#new("float32", size);
    const e = size > 0 ? this.#wasm(out) : null;
    if (e) {
      const kindCode = kind === "uniform" ? 0 : 1;
      // Each thread's 32 bytes of threefry output sit at the start of its packing scratch.
      this.#run(
        e,
        KERNEL.random,
        size * 8,
        this.#minElements,
        (parts) =>
          splitRange(size, parts, 4).filter(([s0, s1]) => s1 > s0).map((
            [s0, s1],
          ) => [kindCode, key[0], key[1], s0, out.ptr + s0 * 4, s1 - s0, 0]),
        64,
      );
    } else k.random(kind, key[0], key[1], out.data as Float32Array);
    return out;
  }
}
