// A system BLAS (OpenBLAS on Linux, Accelerate on macOS) reached through Deno.dlopen, for the engine's large
// matrix products (not vector products: the engine's gemv streams faster, backends/README.md): a kernel like the
// module's own (KERNEL.blasGemm), run on the shared heap by whichever thread takes the part, so the pool stays the
// only threads (the library is asked for one).
//
// Loaded only under Deno with FFI allowed (`-A`) and not turned off (KNOT_BLAS=0); KNOT_BLAS=<path> names the
// library. OpenBLAS picks its kernels from CPUID, which virtual machines often report as a generic model: it
// then runs its 2004-era Prescott kernels (4–5× slower here). Unless OPENBLAS_CORETYPE is set, it is set
// from the CPU's flags before loading (AVX-512: SkylakeX; AVX2 + FMA: Haswell).

/** The routine, taking heap byte offsets (the module adds the heap's address). */
export interface Blas {
  /** The library's file and, for OpenBLAS, its kernels' core. */
  readonly name: string;
  /** C = op(A)·op(B), row-major, float32 (cblas_sgemm with alpha 1, beta 0). */
  sgemm(
    ta: boolean,
    tb: boolean,
    m: number,
    n: number,
    k: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    c: number,
    ldc: number,
  ): void;
}

/** The CBLAS routine used, pointers as addresses (also bench/kernels/cpu_matmul_blas.ts's). */
export const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "usize",
      "i32",
      "usize",
      "i32",
      "f32",
      "usize",
      "i32",
    ],
    result: "void",
  },
} as const;
/** CBLAS's enum values: row-major order, no transpose, transpose. */
export const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

// deno-lint-ignore no-explicit-any
const D = (globalThis as any).Deno;

function allowed(name: "ffi" | "env" | "read", what?: string): boolean {
  try {
    const d = name === "env" ? { name, variable: what } : name === "read" ? { name, path: what } : { name };
    return D.permissions.querySync(d).state === "granted";
  } catch {
    return false;
  }
}

/** OpenBLAS's core for this CPU from /proc/cpuinfo's flags, or null (not Linux, or neither AVX2 nor AVX-512). */
export function coreFromFlags(): string | null {
  if (!allowed("read", "/proc/cpuinfo")) return null;
  try {
    const line = D.readTextFileSync("/proc/cpuinfo").split("\n").find((l: string) => l.startsWith("flags"));
    const flags = new Set<string>(line ? line.split(":")[1].trim().split(/\s+/) : []);
    if (["avx512f", "avx512bw", "avx512vl", "avx512dq"].every((f) => flags.has(f))) return "SkylakeX";
    if (flags.has("avx2") && flags.has("fma")) return "Haswell";
  } catch { /* not Linux */ }
  return null;
}

/** The library, or null: not Deno, no FFI permission, turned off, or none found. */
function load(): { lib: Deno.DynamicLibrary<typeof SYMBOLS>; name: string } | null {
  if (!D?.dlopen || !allowed("ffi") || !allowed("env", "KNOT_BLAS")) return null;
  const want = D.env.get("KNOT_BLAS");
  if (want === "0") return null;
  if (allowed("env", "OPENBLAS_NUM_THREADS") && allowed("env", "OPENBLAS_CORETYPE")) {
    // Before the library starts: no threads of its own (the pool is the threads), and kernels for this CPU.
    if (D.env.get("OPENBLAS_NUM_THREADS") === undefined) D.env.set("OPENBLAS_NUM_THREADS", "1");
    const core = D.env.get("OPENBLAS_CORETYPE") === undefined ? coreFromFlags() : null;
    if (core) D.env.set("OPENBLAS_CORETYPE", core);
  }
  const paths = want
    ? [want]
    : D.build.os === "darwin"
    ? ["/System/Library/Frameworks/Accelerate.framework/Accelerate"]
    : ["libopenblas.so.0", "libopenblas.so"];
  for (const path of paths) {
    try {
      return { lib: D.dlopen(path, SYMBOLS), name: path };
    } catch { /* next */ }
  }
  return null;
}

let loaded: Blas | null | undefined;

/** The system BLAS on the memory `memory` (its heap offsets), loaded once per thread; null where there is none. */
export function blasFor(memory: WebAssembly.Memory): Blas | null {
  if (loaded === undefined) {
    const l = load();
    loaded = l
      ? makeBlas(
        l.lib,
        `${l.name}${D.env.get("OPENBLAS_CORETYPE") ? ` (${D.env.get("OPENBLAS_CORETYPE")})` : ""}`,
        memory,
      )
      : null;
  }
  return loaded;
}

function makeBlas(lib: Deno.DynamicLibrary<typeof SYMBOLS>, name: string, memory: WebAssembly.Memory): Blas {
  // The heap's address: a shared memory never moves (its whole range is reserved); another may on growth.
  let buf: ArrayBufferLike | null = null, base = 0;
  const at = () => {
    if (memory.buffer !== buf) {
      buf = memory.buffer;
      base = Number(D.UnsafePointer.value(D.UnsafePointer.of(new Uint8Array(buf))));
    }
    return base;
  };
  const { cblas_sgemm } = lib.symbols;
  return {
    name,
    sgemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc) {
      const o = at();
      const p = (x: number) => BigInt(o + x);
      cblas_sgemm(
        ROW_MAJOR,
        ta ? TRANS : NO_TRANS,
        tb ? TRANS : NO_TRANS,
        m,
        n,
        k,
        1,
        p(a),
        lda,
        p(b),
        ldb,
        0,
        p(c),
        ldc,
      );
    },
  };
}
