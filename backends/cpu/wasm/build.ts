// Dev-time build of the CPU engine's WebAssembly module (every kernel, one module).
//
//   deno task build:wasm          # regenerate engine_wasm.ts
//   deno task build:wasm --check  # exit 1 if engine_wasm.ts is stale (3 if the compiler cannot be loaded)
//   deno task build:wasm --wat    # also write the text form of both builds to a temp dir
// (the task is deno run -A --lock=scripts/build.lock backends/cpu/wasm/build.ts: build tools are pinned in
// their own lock file, so deno.lock, and a user's first run, hold only what the library imports)
//
// Compiles engine.as.ts (which pulls in matmul.as.ts, elementwise.as.ts, vector.as.ts, composite.as.ts, data.as.ts, fused.as.ts and program.as.ts)
// twice with the AssemblyScript compiler, pinned by the inline `npm:`
// specifier below: a plain SIMD build and an "fma" build with relaxed-simd
// enabled (the source switches on ASC_FEATURE_RELAXED_SIMD), and writes both
// binaries, base64-encoded, into engine_wasm.ts, which is what engine.ts
// loads. The compiler is only needed here: nothing in the library imports
// this file, so users never download it.

const SOURCE = "engine.as.ts";
const OUTPUT = "engine_wasm.ts";
const ASC_VERSION = "0.28.20"; // keep in sync with the import above
/**
 * -O3, no runtime, memory imported from the host (heap.ts owns its layout;
 * the module's own static data, the float64 math tables, sit below
 * `heapBase()`).
 */
const FLAGS = ["-O3", "--runtime", "stub", "--noAssert", "--enable", "simd", "--importMemory", "--noExportMemory"];
/** Shared memory (for the worker pool): the memory import is declared shared, with wasm32's 4 GiB maximum. */
const SHARED = ["--sharedMemory", "--maximumMemory", "65536", "--enable", "threads"];
const VARIANTS = {
  SIMD: [] as string[],
  FMA: ["--enable", "relaxed-simd"],
  SIMD_SHARED: SHARED,
  FMA_SHARED: ["--enable", "relaxed-simd", ...SHARED],
};

const here = new URL(".", import.meta.url);

/** Exit status of `--check` when the compiler cannot be loaded (e.g. offline): the check did not run. */
export const NO_TOOLCHAIN = 3;

// deno-lint-ignore no-explicit-any
let asc: any;

/** Compiles the kernel; returns the binary and its text form. */
async function compile(extra: string[]): Promise<{ wasm: Uint8Array; wat: string }> {
  const files: Record<string, Uint8Array | string> = {};
  const { error, stderr } = await asc.main(
    [SOURCE, ...FLAGS, ...extra, "--outFile", "out.wasm", "--textFile", "out.wat"],
    {
      readFile: (name: string) => {
        try {
          return Deno.readTextFileSync(new URL(name, here));
        } catch {
          return null;
        }
      },
      writeFile: (name: string, contents: Uint8Array | string) => {
        files[name] = contents;
      },
      listFiles: () => [],
    },
  );
  if (error) throw new Error(`asc failed: ${error.message}\n${stderr.toString()}`);
  const wasm = files["out.wasm"], wat = files["out.wat"];
  if (!(wasm instanceof Uint8Array) || typeof wat !== "string") throw new Error("asc produced no output");
  return { wasm, wat };
}

/**
 * The module imports exactly its memory (env.memory) and nothing else; its
 * static data must end where `heapBase()` says (checked at load).
 */
function validate(wasm: Uint8Array, wat: string, relaxed: boolean): void {
  if (/relaxed/.test(wat) !== relaxed) throw new Error(`relaxed-simd instructions ${relaxed ? "missing" : "present"}`);
  const mod = new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
  const imports = WebAssembly.Module.imports(mod);
  if (imports.length !== 1 || imports[0].kind !== "memory") {
    throw new Error(`unexpected imports: ${JSON.stringify(imports)}`);
  }
  const exports = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  for (
    const name of [
      "matmul",
      "MR",
      "NR",
      "KC",
      "MC",
      "NC",
      "binaryF32",
      "where32",
      "strided32",
      "unaryF32",
      "reduceF32",
      "gemv",
      "randomF32",
      "heapBase",
      "binaryI32",
      "castData",
      "gemvBatch",
      "copyRows",
      "fillData",
      "gatherRows",
      "scatterAddRows",
      "runCalls",
      "runParts",
      "serve",
      "fusedF32",
    ]
  ) {
    if (!exports.has(name)) throw new Error(`missing export ${name}`);
  }
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function render(builds: Record<string, Uint8Array>): Promise<string> {
  let text = `// GENERATED FILE — do not edit by hand.
// Source:  backends/cpu/wasm/${SOURCE} (AssemblyScript ${ASC_VERSION}, flags: ${FLAGS.join(" ")})
// Command: deno run -A backends/cpu/wasm/build.ts
`;
  for (const [name, wasm] of Object.entries(builds)) {
    const extra = VARIANTS[name as keyof typeof VARIANTS].join(" ") || "(none)";
    text += `
/**
 * The ${name.toLowerCase()} build of the engine module, base64-encoded (extra flags: ${extra};
 * ${wasm.length} bytes, sha256 ${await sha256(wasm)}).
 */
export const ENGINE_WASM_${name}_BASE64 =
  "${toBase64(wasm)}";
`;
  }
  return text;
}

if (import.meta.main) {
  try {
    // Pinned inline, not in deno.json "imports", so users of the library never resolve the compiler.
    // deno-lint-ignore no-import-prefix
    asc = (await import("npm:assemblyscript@0.28.20/asc")).default;
  } catch (e) {
    console.error(`AssemblyScript compiler unavailable: ${(e as Error).message}`);
    Deno.exit(NO_TOOLCHAIN);
  }
  const builds: Record<string, Uint8Array> = {};
  const watDir = Deno.args.includes("--wat") ? Deno.makeTempDirSync({ prefix: "engine-wat-" }) : null;
  for (const [name, extra] of Object.entries(VARIANTS)) {
    const { wasm, wat } = await compile(extra);
    validate(wasm, wat, name.startsWith("FMA"));
    builds[name] = wasm;
    if (watDir) {
      const path = `${watDir}/engine.${name.toLowerCase()}.wat`;
      Deno.writeTextFileSync(path, wat);
      console.log(`wrote ${path}`);
    }
  }
  const text = await render(builds);
  const outUrl = new URL(OUTPUT, here);
  const sizes = Object.values(builds).map((w) => w.length).join(" + ");
  if (Deno.args.includes("--check")) {
    let old = "";
    try {
      old = Deno.readTextFileSync(outUrl);
    } catch { /* missing counts as stale */ }
    if (old !== text) {
      console.error(`${OUTPUT} is stale: run deno run -A backends/cpu/wasm/build.ts`);
      Deno.exit(1);
    }
    console.log(`${OUTPUT} is up to date (${sizes} bytes of wasm)`);
  } else {
    Deno.writeTextFileSync(outUrl, text);
    console.log(`wrote ${OUTPUT} (${sizes} bytes of wasm)`);
  }
}
