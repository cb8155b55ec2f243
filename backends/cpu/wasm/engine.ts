// Loader of the CPU engine's WebAssembly module (engine.as.ts: matmul, vector products, elementwise, where,
// strided copy, reductions, data movement) and owner of the memory it runs on (a Heap, ../heap.ts).
//
// Two builds of the same source exist (engine_wasm.ts): "simd", plain f32x4.mul + f32x4.add, and "fma",
// which uses relaxed-simd f32x4.relaxed_madd in the matmul (~40% faster on x86 with FMA3). relaxed_madd may
// be fused or not depending on the engine and CPU, so the "fma" build is used only where it validates AND a
// probe product shows it really fuses; its results are then the exactly-rounded fused ones on every such
// machine. Otherwise the "simd" build runs, whose results are bit-identical everywhere. Both builds are
// instantiated (on demand) against the same memory, so either can run on any buffer of the heap. Nothing
// here runs where WebAssembly SIMD is missing: `engine()` is then null and the cpu backend keeps its
// buffers in plain typed arrays with the TypeScript kernels.

import {
  ENGINE_WASM_FMA_BASE64,
  ENGINE_WASM_FMA_SHARED_BASE64,
  ENGINE_WASM_SIMD_BASE64,
  ENGINE_WASM_SIMD_SHARED_BASE64,
} from "./engine_wasm.ts";
import { Heap, MAX_PAGES } from "../heap.ts";
import { adviseHugePages } from "./hugepages.ts";

/** Which build of the module: plain mul+add, or fused relaxed_madd. */
export type EngineVariant = "simd" | "fma";

/** The module's exports (pointers are byte addresses in the heap). */
export interface EngineExports {
  matmul(
    a: number,
    b: number,
    c: number,
    pa: number,
    pb: number,
    tmp: number,
    M: number,
    K: number,
    N: number,
    tA: number,
    tB: number,
    lda: number,
    ldb: number,
    ldc: number,
  ): void;
  binaryF32(op: number, a: number, b: number, out: number, desc: number, rank: number): void;
  where32(c: number, a: number, b: number, out: number, desc: number, rank: number): void;
  strided32(x: number, out: number, desc: number, rank: number): void;
  unaryF32(op: number, x: number, out: number, n: number): void;
  reduceF32(op: number, x: number, out: number, outer: number, red: number, inner: number): void;
  gemv(x: number, w: number, out: number, K: number, N: number, ldw: number, transW: number): void;
  gemvBatch(
    x: number,
    w: number,
    out: number,
    K: number,
    N: number,
    ldw: number,
    transW: number,
    off: number,
    n: number,
  ): void;
  attendRows(
    q: number,
    k: number,
    v: number,
    out: number,
    hd: number,
    S: number,
    mask: number,
    scale: number,
    fill: number,
    desc: number,
    n: number,
    scratch: number,
  ): void;
  rmsNormRows(
    x: number,
    count: number,
    eps: number,
    w: number,
    out: number,
    rows: number,
    n: number,
    scratch: number,
  ): void;
  ropeRows(x: number, cos: number, sin: number, out: number, rows: number, hd: number): void;
  binaryI32(op: number, a: number, b: number, out: number, desc: number, rank: number): void;
  castData(x: number, out: number, n: number, from: number, to: number): void;
  copyRows(src: number, dst: number, rows: number, bytes: number, srcStride: number, dstStride: number): void;
  fillData(out: number, n: number, bits: number, esz: number): void;
  gatherRows(table: number, rows: number, rowBytes: number, idx: number, n: number, out: number): number;
  scatterAddRows(idx: number, upd: number, rows: number, rowSize: number, n: number, out: number): number;
  /** Runs `n` records (program.as.ts); 0, or 1 + the index of a fork-join whose worker failed. */
  runCalls(rec: number, n: number, scratch: number): number;
  /** A worker's (or the main thread's) loop over a part table's parts, for the module's own kernels. */
  runParts(kernel: number, table: number, total: number, counter: number, scratch: number): void;
  /** A worker's polling of its slot (program.as.ts): 0 after `polls` polls without work, 1 for a JavaScript kernel. */
  serve(slot: number, polls: number, pages: number): number;
  fusedF32(prog: number, out: number, s0: number, s1: number, scratch: number): void;
  randomF32(kind: number, k0: number, k1: number, start: number, out: number, n: number, tmp: number): void;
  heapBase(): number;
  MR: WebAssembly.Global;
  NR: WebAssembly.Global;
  KC: WebAssembly.Global;
  MC: WebAssembly.Global;
  NC: WebAssembly.Global;
}

/** One loaded build on the shared heap. */
export interface Engine {
  readonly variant: EngineVariant;
  readonly x: EngineExports;
  readonly heap: Heap;
  /** Whether the heap's memory is shared (a SharedArrayBuffer), so workers can run kernels on it. */
  readonly shared: boolean;
  /** Address of a 4 KiB scratch block for kernel descriptors (dims and strides). */
  readonly desc: number;
  readonly MR: number;
  readonly NR: number;
  readonly KC: number;
  readonly MC: number;
  readonly NC: number;
}

/** Bytes of the descriptor scratch block; bounds the rank a strided kernel accepts. */
export const DESC_BYTES = 4096;

// A minimal module whose only function returns a v128.const: it validates
// exactly when the engine supports fixed-width SIMD.
// deno-fmt-ignore
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, // code: no locals, v128.const
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, // 16 zero bytes, end
]);

let simd: boolean | undefined;
/** Whether this engine supports WebAssembly fixed-width SIMD (cached). */
export function wasmSimdSupported(): boolean {
  if (simd === undefined) {
    try {
      simd = typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
    } catch {
      simd = false;
    }
  }
  return simd;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * A shared memory where the runtime allows one (Deno; a browser page only when cross-origin isolated), so
 * the worker pool can run on it; else null.
 */
function sharedMemory(): WebAssembly.Memory | null {
  try {
    if (typeof SharedArrayBuffer !== "function") return null;
    if ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) return null;
    const m = new WebAssembly.Memory({ initial: 32, maximum: MAX_PAGES, shared: true });
    if (!(m.buffer instanceof SharedArrayBuffer)) return null;
    adviseHugePages(m, MAX_PAGES * 65536); // the whole reservation, before any data is in it
    return m;
  } catch {
    return null;
  }
}

/** The memory and heap every build runs on, made with the first build. */
let shared: { memory: WebAssembly.Memory; isShared: boolean; heap: Heap | null; desc: number } | null = null;
const builds: Record<EngineVariant, Engine | null | undefined> = { simd: undefined, fma: undefined };
let best: Engine | null | undefined;

function instantiate(variant: EngineVariant): Engine | null {
  try {
    let memory = shared?.memory ?? null, isShared = shared?.isShared ?? false;
    if (memory === null) {
      memory = sharedMemory();
      isShared = memory !== null;
      memory ??= new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES });
    }
    const base64 = variant === "fma"
      ? (isShared ? ENGINE_WASM_FMA_SHARED_BASE64 : ENGINE_WASM_FMA_BASE64)
      : (isShared ? ENGINE_WASM_SIMD_SHARED_BASE64 : ENGINE_WASM_SIMD_BASE64);
    const bytes = decodeBase64(base64);
    if (!WebAssembly.validate(bytes)) return null; // e.g. no relaxed-simd
    const x = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } })
      .exports as unknown as EngineExports;
    if (shared === null) {
      const heap = new Heap(memory, x.heapBase());
      shared = { memory, isShared, heap, desc: heap.alloc(DESC_BYTES) };
    } else if (x.heapBase() > shared.heap!.reserved) return null; // cannot happen: both builds share their data
    const g = (v: WebAssembly.Global) => v.value as number;
    return {
      variant,
      x,
      heap: shared.heap!,
      shared: shared.isShared,
      desc: shared.desc,
      MR: g(x.MR),
      NR: g(x.NR),
      KC: g(x.KC),
      MC: g(x.MC),
      NC: g(x.NC),
    };
  } catch {
    return null;
  }
}

/**
 * Whether the build's matmul multiply-add is fused: [1, x]·[-(1+2⁻²²), x]ᵀ with x = 1+2⁻²³ is exactly
 * 2⁻⁴⁶ with one rounding per step (x² = 1+2⁻²²+2⁻⁴⁶) and 0 when x² is rounded first.
 */
function fuses(e: Engine): boolean {
  const h = e.heap;
  const a = h.alloc(64), b = h.alloc(64), c = h.alloc(64), pa = h.alloc(e.MC * e.KC * 4);
  const pb = h.alloc(e.KC * e.NR * 4), tmp = h.alloc(e.MR * e.NR * 4);
  const x = 1 + 2 ** -23;
  h.f32.set([1, x], a >>> 2);
  h.f32.set([-(1 + 2 ** -22), x], b >>> 2);
  e.x.matmul(a, b, c, pa, pb, tmp, 1, 2, 1, 0, 0, 2, 1, 1);
  const ok = h.f32[c >>> 2] === 2 ** -46;
  h.release(a, 64), h.release(b, 64), h.release(c, 64), h.release(pa, e.MC * e.KC * 4);
  h.release(pb, e.KC * e.NR * 4), h.release(tmp, e.MR * e.NR * 4);
  return ok;
}

/** One specific build (tests, the benchmark ladder); null where it cannot run (for "fma": does not fuse). */
export function engineBuild(variant: EngineVariant): Engine | null {
  let e = builds[variant];
  if (e !== undefined) return e;
  e = null;
  if (wasmSimdSupported()) {
    e = instantiate(variant);
    if (e && variant === "fma" && !fuses(e)) e = null;
  }
  return builds[variant] = e;
}

/** The build the cpu backend runs: "fma" where it loads and fuses, else "simd"; null without wasm SIMD. */
export function engine(): Engine | null {
  if (best === undefined) best = engineBuild("fma") ?? engineBuild("simd");
  return best;
}
