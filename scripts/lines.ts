/**
 * The library's size, as tinygrad's `sz.py`: lines of code (not blank, not
 * comment-only) per library folder, the total, and a budget. Exits 1 above
 * the budget, so growth is a decision (raise BUDGET in the same commit) and
 * not an accident. Applications (apps/, examples/), benchmarks and tests are
 * not counted; neither is the generated Wasm module.
 *
 *   deno task lines            # prints the table and "library: N lines of code (budget B)"
 * @module
 */
import { join, relative } from "node:path";

/** Folders (and root files) that make up the library. */
export const LIBRARY = [
  "mod.ts",
  "web.ts",
  "core",
  "autodiff",
  "jit",
  "backends",
  "llama",
  "peft",
  "optim",
  "io",
  "train",
];
/** Generated or build-only files, not code anyone maintains by hand in the library. */
const EXCLUDE = new Set(["backends/cpu/wasm/engine_wasm.ts", "backends/cpu/wasm/build.ts"]);
/**
 * The most lines of code the library may have. Raised from 9,500 to 10,500 when the cpu engine landed
 * (issue 11: the heap, the worker pool and the AssemblyScript kernels, ~1,200 lines, beside the TypeScript
 * fallback kernels it keeps for runtimes without WebAssembly SIMD). Raised for issue 12's programs: the
 * webgpu lowering of traced programs (recording, memory planning, prepared dispatches, ~620 lines); the cpu
 * lowering (backends/cpu/compile.ts, ~330, and the kernels split into emit-into-a-sink form so compile records
 * exactly what the eager kernels run) with the last primitives moving into wasm (~470); jit (jit/: the
 * tracing backend, the program passes, the generic executor and the transform, ~655; the decode step over a
 * preallocated cache, ~60; the jitted train step and the runtime hook, ~40); and nn.linearCrossEntropy, the
 * fused chunked LM head of issue 13 (~130). Raised to 14,100 for issue 13's fusion: the fused-kernel
 * contract and its reference meaning (program.ts), the fusion pass over jit programs, and the generated
 * kernels of both backends (the cpu expression kernels, WGSL per fused group). Raised to 14,450 for the
 * second round of issues 11–13: fusion through views, windows (pad/concat as kernel inputs) and recompute
 * (jit/fuse.ts, the contract and its WGSL, ~350), greedy decode in blocks with programs kept across calls
 * (llama/, ~130), and engine kernels for decode's small shapes (four-lane where, four-row sums, ~120). Raised
 * to 14,550 for exp, sigmoid, silu and logsumexp as one engine loop per op with an in-range shortcut (~110:
 * 1.6–1.9× per element, same bits) beside the fused kernel's scalar fill and the webgpu program's deferred
 * submit (~25). Raised to 14,600 for the engine's per-op vector loops of binary rows and neg/sqrt/abs/square
 * (2–3.5× on 4,096 elements, same bits), argmax by lanes (4× on 32,000 logits) and attention's batch of vector
 * products split across threads (~45). Raised to 14,800 for the system BLAS (issue 11, item 4: OpenBLAS or
 * Accelerate through Deno.dlopen for large products, blocks fixed by shape so bits do not depend on the thread
 * count, the library's kernels chosen from the CPU's flags; ~180): 4× on the TL6 step's weight products.
 * Raised to 15,100 for decode attention as one kernel (jit/composite.ts, its contract and meaning in
 * program.ts, the cpu lowering and engine kernel; ~290): nine kernels a layer become one, over the slots
 * written so far, same bits. Raised to 15,150 for one fork-join for consecutive independent split kernels in
 * compiled programs (~35: byte ranges read and written, so arena reuse is respected). Raised to 15,310 for
 * composites beside attention (RMSNorm and RoPE: their matchers, the cpu lowering and engine kernels, ~150;
 * the passes' renumbering shared): a decode layer's ~50 kernels become ~20. Raised to 15,340 for max and min
 * by relaxed SIMD beside a NaN check (~25): one instruction a vector where the exact ones take several; the
 * composites' refactor then freed ~70, and huge pages for the engine's memory took ~30 (cpu/wasm/hugepages.ts).
 * Raised to 15,520 for fork-joins inside the engine's instruction loop (~175: FORK records, the workers' polling
 * loop in the module, the engine's fork descriptor, settling the slots after a trap): a compiled program runs
 * its split engine kernels without returning to JavaScript (0.9 µs less per fork-join of a small product).
 * Raised to 15,525 for the workers' synced view of the memory (a worker polling inside the module takes no
 * interrupt, so its instance may lag a growth its buffer already shows: `grow(0)` after reading the buffer).
 * Raised to 15,534 for gemv's rows of four in steps of sixteen with moving pointers (1.08× on stories260K's
 * products, same bits: fewer loop passes, each reloading the shared memory's size for its bounds checks), and to
 * 15,536 for attention's mask scanned sixteen slots at a time. Raised to 15,547 for greedy decode blocks of 32 steps
 * for small models (llama/generate.ts blockCap: stories260K 1.04–1.05× its tokens/s). Raised to 15,653 for decode
 * attention's common case in three passes (composite.as.ts attendPrefix, ~105: the scores with × scale and the max
 * folded in, ÷ sum then ·v two rows at a time; 1.15–1.18× on the kernel, 1.07× on stories260K's decode,
 * same bits). Lowered to 15,626 when `gemv` became eight rows of one chain each (its four-row path dropped; 1.03–1.07×
 * on stories260K's products and 1.034× on its decode; other bits for every vector product, the same on any thread count).
 * Raised to 15,656 for sampling in time linear in the vocabulary (llama/sample.ts, ~30 net): a sampled token on a
 * 32,000-token vocabulary took 16 ms in a sort, now 0.7 (top-k 0.3); the 15M shape's sampled decode 49 → 333 tokens/s.
 * Raised to 15,677 for gather as a record of the module's instruction loop (runCalls reports a bad index), and a split
 * kernel's fork kept in the same call: a greedy decode block is one call into the module instead of one a step, three
 * JavaScript gathers between (stories260K 1.03×), or one a fork (the 15M shape 1.018 ± 0.009×). Raised to 15,731 for
 * decode attention's query rows on one KV head taking k and v from one load for two (grouped-query attention,
 * composite.as.ts attendPrefix; same bits): stories260K 1.025 ± 0.007× (50 pairs; k alone 1.009, v alone 1.005).
 * Raised to 15,780 for lanes of streamed vector products (vector.as.ts gemvLane and stealLanes, ~45: one lane a
 * thread taken from its front in claims of 32 rows, and from its back by a thread done with its own): one thread had
 * streamed alone while the other waited 11.5% of the 15M shape's decode, 5.4% after; its generate 1.03–1.05×.
 */
export const BUDGET = 15_780;

const ROOT = new URL("..", import.meta.url).pathname;

/** Lines that are neither blank nor only a comment (`//`, or inside a block comment). */
export function codeLines(text: string): number {
  let n = 0, inBlock = false;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (inBlock) {
      if (line.includes("*/")) inBlock = false;
      continue;
    }
    if (line === "" || line.startsWith("//")) continue;
    if (line.startsWith("/*")) {
      if (!line.includes("*/")) inBlock = true;
      continue;
    }
    n++;
  }
  return n;
}

function* tsFiles(path: string): Generator<string> {
  const info = Deno.statSync(path);
  if (info.isFile) {
    if (path.endsWith(".ts")) yield path;
    return;
  }
  for (const e of [...Deno.readDirSync(path)].sort((a, b) => a.name.localeCompare(b.name))) {
    yield* tsFiles(join(path, e.name));
  }
}

if (import.meta.main) {
  let total = 0;
  for (const part of LIBRARY) {
    let n = 0;
    for (const f of tsFiles(join(ROOT, part))) {
      if (!EXCLUDE.has(relative(ROOT, f))) n += codeLines(Deno.readTextFileSync(f));
    }
    console.log(`${part.padEnd(10)} ${String(n).padStart(6)}`);
    total += n;
  }
  console.log(`library: ${total} lines of code (budget ${BUDGET})`);
  if (total > BUDGET) {
    console.error(
      `library is ${total - BUDGET} lines over its budget of ${BUDGET}: trim it, or raise BUDGET in scripts/lines.ts`,
    );
    Deno.exit(1);
  }
}
