// Dev-time build of the WebAssembly SIMD matmul kernel.
//
//   deno task build:wasm          # regenerate matmul_wasm.ts
//   deno task build:wasm --check  # exit 1 if matmul_wasm.ts is stale
//   deno task build:wasm --wat    # also write the text form of both builds to a temp dir
// (the task is deno run -A --lock=scripts/build.lock backends/cpu/wasm/build.ts: build tools are pinned in
// their own lock file, so deno.lock, and a user's first run, hold only what the library imports)
//
// Compiles matmul.as.ts twice with the AssemblyScript compiler (pinned
// below): a plain SIMD build and an "fma" build with
// relaxed-simd enabled (the source switches on ASC_FEATURE_RELAXED_SIMD), and
// writes both binaries, base64-encoded, into matmul_wasm.ts, which is what
// kernel.ts loads. The compiler is only needed here: nothing in the
// library imports this file, so users and CI never download it.

// deno-lint-ignore no-import-prefix
import asc from "npm:assemblyscript@0.28.20/asc";

const SOURCE = "matmul.as.ts";
const OUTPUT = "matmul_wasm.ts";
const ASC_VERSION = "0.28.20"; // keep in sync with the import above
/** -O3 and no runtime: the module is pure arithmetic on caller-owned memory. */
const FLAGS = ["-O3", "--runtime", "stub", "--noAssert", "--enable", "simd"];
const VARIANTS = {
  SIMD: [] as string[],
  FMA: ["--enable", "relaxed-simd"],
};

const here = new URL(".", import.meta.url);

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
 * kernel.ts owns the whole linear memory from address 0, so the module must
 * not import anything nor place static data in memory.
 */
function validate(wasm: Uint8Array, wat: string, relaxed: boolean): void {
  if (/relaxed/.test(wat) !== relaxed) throw new Error(`relaxed-simd instructions ${relaxed ? "missing" : "present"}`);
  const mod = new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>);
  const imports = WebAssembly.Module.imports(mod);
  if (imports.length) throw new Error(`unexpected imports: ${JSON.stringify(imports)}`);
  if (/\(data\b/.test(wat)) throw new Error("module has a data segment (would overlap the caller's buffers)");
  const exports = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  for (const name of ["memory", "matmul", "MR", "NR", "KC", "MC", "NC"]) {
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
 * The ${name.toLowerCase()} build of the matmul module, base64-encoded (extra flags: ${extra};
 * ${wasm.length} bytes, sha256 ${await sha256(wasm)}).
 */
export const MATMUL_WASM_${name}_BASE64 =
  "${toBase64(wasm)}";
`;
  }
  return text;
}

if (import.meta.main) {
  const builds: Record<string, Uint8Array> = {};
  const watDir = Deno.args.includes("--wat") ? Deno.makeTempDirSync({ prefix: "matmul-wat-" }) : null;
  for (const [name, extra] of Object.entries(VARIANTS)) {
    const { wasm, wat } = await compile(extra);
    validate(wasm, wat, name === "FMA");
    builds[name] = wasm;
    if (watDir) {
      const path = `${watDir}/matmul.${name.toLowerCase()}.wat`;
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
