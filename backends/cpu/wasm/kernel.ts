// Loader for the WebAssembly SIMD matmul kernel (see matmul.as.ts).
//
// Two builds of the same source exist (matmul_wasm.ts): "simd", plain
// f32x4.mul + f32x4.add, and "fma", which uses relaxed-simd
// f32x4.relaxed_madd (~40% faster on x86 with FMA3). relaxed_madd may be
// fused or not depending on the engine and CPU, so the "fma" build is used
// only where it validates AND a probe product shows it really fuses; its
// results are then the exactly-rounded fused ones on every such machine.
// Otherwise the "simd" build runs, whose results are bit-identical
// everywhere. A module is decoded and instantiated synchronously, once, on
// first use. Its linear memory is owned entirely by this file and grows on
// demand (it never shrinks: it is kept as scratch for later calls). Each call
// copies op(A) and op(B) in with TypedArray.set (a memcpy), runs the packed
// GEMM, and copies C out; transposes are handled by the kernel's packing.

import { MATMUL_WASM_FMA_BASE64, MATMUL_WASM_SIMD_BASE64 } from "./matmul_wasm.ts";
import type { MatmulF32Args, MatmulF32Fn } from "../matmul_args.ts";

/** Which build of the WebAssembly kernel: plain mul+add, or fused relaxed_madd. */
export type WasmMatmulVariant = "simd" | "fma";

interface Exports {
  memory: WebAssembly.Memory;
  matmul(
    a: number,
    b: number,
    c: number,
    pa: number,
    pb: number,
    M: number,
    K: number,
    N: number,
    transA: number,
    transB: number,
  ): void;
  MR: WebAssembly.Global;
  NR: WebAssembly.Global;
  KC: WebAssembly.Global;
  MC: WebAssembly.Global;
  NC: WebAssembly.Global;
}

interface Kernel {
  exports: Exports;
  MR: number;
  NR: number;
  KC: number;
  MC: number;
  NC: number;
  /** View of the current memory buffer (replaced after every grow). */
  heap: Float32Array;
}

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
/** Per build: `undefined` not loaded yet, `null` unavailable (no SIMD, load failed, or does not fuse). */
const kernels: Record<WasmMatmulVariant, Kernel | null | undefined> = { simd: undefined, fma: undefined };
let best: Kernel | null | undefined;

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

function instantiate(base64: string): Kernel | null {
  try {
    const bytes = decodeBase64(base64);
    if (!WebAssembly.validate(bytes)) return null; // e.g. no relaxed-simd
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as Exports;
    const g = (x: WebAssembly.Global) => x.value as number;
    return {
      exports,
      MR: g(exports.MR),
      NR: g(exports.NR),
      KC: g(exports.KC),
      MC: g(exports.MC),
      NC: g(exports.NC),
      heap: new Float32Array(exports.memory.buffer),
    };
  } catch {
    return null;
  }
}

/**
 * Whether the kernel's multiply-add is fused: [1, x]·[-(1+2⁻²²), x]ᵀ with
 * x = 1+2⁻²³ is exactly 2⁻⁴⁶ with one rounding per step (x² = 1+2⁻²²+2⁻⁴⁶)
 * and 0 when x² is rounded first.
 */
function fuses(k: Kernel): boolean {
  const x = 1 + 2 ** -23;
  const out = new Float32Array(1);
  run(k, new Float32Array([1, x]), 0, new Float32Array([-(1 + 2 ** -22), x]), 0, out, 0, 1, 2, 1, false, false);
  return out[0] === 2 ** -46;
}

function load(variant: WasmMatmulVariant): Kernel | null {
  let k = kernels[variant];
  if (k !== undefined) return k;
  k = null;
  if (wasmSimdSupported()) {
    k = instantiate(variant === "fma" ? MATMUL_WASM_FMA_BASE64 : MATMUL_WASM_SIMD_BASE64);
    if (k && variant === "fma" && !fuses(k)) k = null;
  }
  return kernels[variant] = k;
}

/** The build `matmulF32` uses: "fma" where it loads and fuses, else "simd". */
function loadBest(): Kernel | null {
  if (best === undefined) best = load("fma") ?? load("simd");
  return best;
}

/**
 * Which WebAssembly build `tryMatmulF32Wasm` (and so `matmulF32`) runs here,
 * or null where WebAssembly SIMD is unavailable. Loads it on first call.
 */
export function wasmMatmulVariant(): WasmMatmulVariant | null {
  const k = loadBest();
  return k === null ? null : k === kernels.fma ? "fma" : "simd";
}

/** Whether a WebAssembly kernel (any build) can run here. */
export function wasmMatmulAvailable(): boolean {
  return loadBest() !== null;
}

const PAGE = 65536;
/** Keep every buffer offset below 2 GiB so i32 byte arithmetic in the kernel cannot overflow. */
const MAX_BYTES = 2 ** 31;

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

/**
 * Grows the kernel's memory to at least `bytes`; returns false if that is
 * over the limit or the engine refuses.
 */
function reserve(k: Kernel, bytes: number): boolean {
  if (bytes > MAX_BYTES) return false;
  const mem = k.exports.memory;
  const have = mem.buffer.byteLength;
  if (bytes > have) {
    // Grow geometrically so a sequence of growing calls does not re-grow
    // each time; if the engine refuses that much, ask for just enough.
    const want = Math.min(MAX_BYTES, Math.max(bytes, have * 1.5));
    try {
      mem.grow(Math.ceil((want - have) / PAGE));
    } catch {
      try {
        mem.grow(Math.ceil((bytes - have) / PAGE));
      } catch {
        return false;
      }
    }
  }
  if (k.heap.buffer !== mem.buffer) k.heap = new Float32Array(mem.buffer);
  return true;
}

/**
 * out[M,N] = op(A)[M,K] · op(B)[K,N] on the WebAssembly kernel ("fma" build
 * where available, else "simd"; see {@link wasmMatmulVariant}); same contract
 * as `matmulF32` (A is [M,K], or [K,M] when transA; B is [K,N], or [N,K]
 * when transB; element offsets; `out` overwritten). Accumulates in float32.
 * Returns false, having written nothing, when no build can run (no SIMD) or
 * the operands do not fit in wasm32 memory; the caller then falls back to
 * the TypeScript kernel.
 */
export function tryMatmulF32Wasm(...args: MatmulF32Args): boolean {
  const k = loadBest();
  return k !== null && run(k, ...args);
}

/** Runs one product on kernel `k`; false (nothing written) if it does not fit in memory. */
function run(k: Kernel, ...[a, aOff, b, bOff, out, outOff, M, K, N, transA, transB]: MatmulF32Args): boolean {
  if (M <= 0 || N <= 0) return true;
  if (K <= 0) {
    out.fill(0, outOff, outOff + M * N);
    return true;
  }
  // Memory layout (bytes, 64-aligned): A | B | C (padded) | packed A | packed B.
  const aBytes = roundUp(M * K * 4, 64);
  const bBytes = roundUp(K * N * 4, 64);
  const cBytes = roundUp(roundUp(M, k.MR) * roundUp(N, k.NR) * 4, 64);
  const paBytes = k.MC * k.KC * 4;
  const pbBytes = Math.min(K, k.KC) * roundUp(Math.min(N, k.NC), k.NR) * 4;
  const aPtr = 0, bPtr = aBytes, cPtr = bPtr + bBytes, paPtr = cPtr + cBytes, pbPtr = paPtr + paBytes;
  if (!reserve(k, pbPtr + pbBytes)) return false;
  const heap = k.heap;
  heap.set(a.subarray(aOff, aOff + M * K), aPtr >> 2);
  heap.set(b.subarray(bOff, bOff + K * N), bPtr >> 2);
  k.exports.matmul(aPtr, bPtr, cPtr, paPtr, pbPtr, M, K, N, transA ? 1 : 0, transB ? 1 : 0);
  out.set(heap.subarray(cPtr >> 2, (cPtr >> 2) + M * N), outOff);
  return true;
}

/**
 * {@link tryMatmulF32Wasm} that throws when the WebAssembly kernel cannot
 * run. Used by the benchmark ladder and tests; `matmulF32` dispatches.
 */
export function matmulF32Wasm(...args: MatmulF32Args): void {
  if (!tryMatmulF32Wasm(...args)) throw new Error("WebAssembly SIMD matmul kernel unavailable for this call");
}

/**
 * One specific build, for the benchmark ladder and tests; null where it is
 * unavailable (for "fma": no relaxed-simd, or its madd does not fuse).
 */
export function wasmMatmulBuild(variant: WasmMatmulVariant): MatmulF32Fn | null {
  const k = load(variant);
  if (k === null) return null;
  return (...args) => {
    if (!run(k, ...args)) {
      throw new Error(`WebAssembly ${variant} matmul: operands do not fit in wasm32 memory`);
    }
  };
}
