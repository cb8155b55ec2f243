/**
 * The rung the cpu backend did not take: WebAssembly generated per fused group, against the engine's
 * expression interpreter (backends/cpu/wasm/fused.as.ts) on the same groups. The groups are those jit's
 * fusion pass makes of the AdamW update and of RMSNorm's backward (float32 add/sub/mul/div/sqrt/neg/square
 * over inputs read in place or broadcast scalars: what a first generator handles); each becomes one
 * AssemblyScript function — a single loop, every node a SIMD register op, the scalar tail the same ops in
 * float32 — compiled by the AssemblyScript compiler the engine's build uses and instantiated on the engine's
 * memory. Both run on one thread on the same buffers; their outputs are compared bit for bit.
 *
 *   deno run -A --lock=scripts/build.lock bench/kernels/cpu_fused_codegen.ts [--reps 30]
 * (the compiler is a build tool, pinned in scripts/build.lock like `deno task build:wasm`)
 * @module
 */
import { parseArgs } from "node:util";
import { dispose, jit, setBackend } from "../../mod.ts";
import { fusedCases } from "./fused_cases.ts";
import { getBackend } from "../../core/runtime.ts";
import type { CpuBackend } from "../../backends/cpu/backend.ts";
import type { CpuBuffer } from "../../backends/cpu/buffer.ts";
import { setCpuThreads } from "../../backends/cpu/mod.ts";
import { engine } from "../../backends/cpu/wasm/engine.ts";
import type { FusedCall, Program } from "../../backends/program.ts";
import { machineLine, table } from "../util.ts";

const { values } = parseArgs({ options: { reps: { type: "string", default: "30" } } });
const reps = Number(values.reps);
await setBackend("cpu");
setCpuThreads(1);
const b = getBackend() as CpuBackend, e = engine()!;

/** The fused calls of the program jit compiles for `f`. */
function fusedCalls(f: (...a: never[]) => unknown, args: unknown[]): { calls: FusedCall[]; p: Program } {
  const compile = b.compile.bind(b);
  let p: Program | null = null;
  b.compile = (q) => (p = q, compile(q));
  try {
    dispose(jit(f)(...args as never[]));
  } finally {
    delete (b as { compile?: unknown }).compile;
  }
  const q = p! as Program;
  return { calls: q.steps.flatMap((s) => s.call.kernel === "fused" ? [s.call] : []), p: q };
}

const BIN: Record<string, [string, string]> = {
  add: ["f32x4.add", "+"],
  sub: ["f32x4.sub", "-"],
  mul: ["f32x4.mul", "*"],
  div: ["f32x4.div", "/"],
};

/** AssemblyScript for one group, or null where this generator does not cover it. */
function generate(name: string, c: FusedCall): string | null {
  const size = c.outShape.reduce((a, b) => a * b, 1);
  if (c.reduce || c.nodes.some((n) => n.dtype !== "float32")) return null;
  const dense = (s: readonly number[]) => s.every((x, k) => x === c.outShape.slice(k + 1).reduce((a, b) => a * b, 1));
  const kind = c.inputs.map((x) =>
    x.offset === 0 && dense(x.strides) ? "dense" : x.strides.every((s) => s === 0) ? "scalar" : null
  );
  if (kind.includes(null)) return null;
  const vec: string[] = [], sc: string[] = [];
  for (const [k, n] of c.nodes.entries()) {
    if (n.op === "input") {
      const p = `p${n.input}`, off = c.inputs[n.input].offset;
      vec.push(
        kind[n.input] === "dense"
          ? `const v${k} = v128.load(${p} + o);`
          : `const v${k} = v128.load32_splat(${p} + ${off * 4});`,
      );
      sc.push(
        kind[n.input] === "dense"
          ? `const s${k} = load<f32>(${p} + o);`
          : `const s${k} = load<f32>(${p} + ${off * 4});`,
      );
    } else if (n.op === "binary" && BIN[n.fn]) {
      vec.push(`const v${k} = ${BIN[n.fn][0]}(v${n.a}, v${n.b});`);
      sc.push(`const s${k}: f32 = s${n.a} ${BIN[n.fn][1]} s${n.b};`);
    } else if (n.op === "unary" && ["sqrt", "neg", "square"].includes(n.fn)) {
      vec.push(
        n.fn === "square" ? `const v${k} = f32x4.mul(v${n.x}, v${n.x});` : `const v${k} = f32x4.${n.fn}(v${n.x});`,
      );
      sc.push(
        n.fn === "square"
          ? `const s${k}: f32 = s${n.x} * s${n.x};`
          : n.fn === "neg"
          ? `const s${k}: f32 = -s${n.x};`
          : `const s${k}: f32 = Mathf.sqrt(s${n.x});`,
      );
    } else return null;
  }
  const last = c.nodes.length - 1, params = c.inputs.map((_, i) => `p${i}: usize`).join(", ");
  return `export function ${name}(${params}, out: usize): void {
  let j = 0;
  for (; j + 4 <= ${size}; j += 4) {
    const o = <usize>j << 2;
    ${vec.join("\n    ")}
    v128.store(out + o, v${last});
  }
  for (; j < ${size}; j++) {
    const o = <usize>j << 2;
    ${sc.join("\n    ")}
    store<f32>(out + o, s${last});
  }
}
`;
}

// A computed specifier: type checks of bench/ do not resolve the compiler (it is in scripts/build.lock only).
const ASC = "npm:assemblyscript@0.28.20/asc";
// deno-lint-ignore no-explicit-any
const asc: any = (await import(ASC)).default;
async function compileModule(source: string): Promise<WebAssembly.Instance> {
  const files: Record<string, Uint8Array | string> = {};
  const flags = ["-O3", "--runtime", "stub", "--noAssert", "--enable", "simd", "--importMemory"];
  const shared = ["--sharedMemory", "--maximumMemory", "65536", "--enable", "threads"];
  const { error, stderr } = await asc.main(["gen.ts", ...flags, ...(e.shared ? shared : []), "--outFile", "gen.wasm"], {
    readFile: (n: string) => n === "gen.ts" ? source : null,
    writeFile: (n: string, c: Uint8Array) => void (files[n] = c),
    listFiles: () => [],
  });
  if (error) throw new Error(`asc: ${error.message}\n${stderr}`);
  const mod = await WebAssembly.compile(files["gen.wasm"] as Uint8Array<ArrayBuffer>);
  return await WebAssembly.instantiate(mod, { env: { memory: e.heap.memory, abort: () => {} } });
}

function time(f: () => void): number {
  for (let i = 0; i < 3; i++) f();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  return (performance.now() - t0) / reps * 1000;
}

// The chains where generation can pay: a long cheap chain and a reduction's backward.
const { cases: all, release } = fusedCases();
const cases = all.filter(([name]) => /AdamW|backward/.test(name));

console.log(`# cpu fused kernels: generated wasm per group vs the interpreter (1 thread)\n\n${machineLine()}\n`);
const rows: (string | number)[][] = [];
for (const [name, f, args] of cases) {
  const { calls, p } = fusedCalls(f, args);
  const gens = calls.map((c, i) => [c, generate(`k${i}`, c), `k${i}`] as const).filter(([, s]) => s !== null);
  const t0 = performance.now();
  const inst = await compileModule(gens.map(([, s]) => s).join("\n"));
  const compileMs = performance.now() - t0;
  let interp = 0, generated = 0, same = true, elements = 0;
  for (const [c, , fn] of gens) {
    const data = (n: number) => new Float32Array(n).map((_, j) => 1.5 + Math.sin(j * 0.37));
    const ins = new Map(c.inputs.map((x) => [x.value, b.upload(data(p.values[x.value].size), "float32")]));
    const ptrs = c.inputs.map((x) => (ins.get(x.value) as CpuBuffer).ptr);
    const size = c.outShape.reduce((a, b) => a * b, 1);
    const out = b.upload(new Float32Array(size), "float32") as CpuBuffer;
    const kernel = inst.exports[fn] as (...a: number[]) => void;
    interp += time(() => b.free(b.fused(c, (id) => ins.get(id)!)));
    generated += time(() => kernel(...ptrs, out.ptr));
    const ref = b.fused(c, (id) => ins.get(id)!);
    const [u, v] = [new Uint32Array(b.readSync(ref).buffer), new Uint32Array(b.readSync(out).buffer)];
    same &&= u.every((z, j) => z === v[j]);
    elements += size;
    b.free(ref), b.free(out);
    for (const buf of ins.values()) b.free(buf);
  }
  rows.push([
    name,
    `${gens.length} of ${calls.length}`,
    elements,
    interp.toFixed(0),
    generated.toFixed(0),
    (interp / generated).toFixed(2),
    compileMs.toFixed(0),
    same ? "yes" : "NO",
  ]);
}
console.log(table(
  [
    "chain",
    "groups generated",
    "elements",
    "µs interpreter",
    "µs generated",
    "interpreter ÷ generated",
    "ms to compile",
    "same bits",
  ],
  rows,
));
console.log(
  `(${reps} calls each after 3 warm-up, one thread; inputs are random float32 buffers of each group's sizes)`,
);
release();
