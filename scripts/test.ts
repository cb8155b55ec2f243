/**
 * `deno task test`: runs the test suite in two `deno test` processes and ends with one combined summary line,
 * `all: ok | N passed | N failed | N ignored` (what .ci/run counts).
 *
 *   deno task test               # the WebGPU modules in one process, all other modules in another (--parallel), at once
 *                                # (and SOLO_MODULES, which measure their own process, in a third)
 *   deno task test --filter x    # extra flags (not module paths) go to both `deno test` runs
 *
 * Why two: a single `deno test` of the whole suite occasionally crashed in exit() after every test had passed and
 * Deno had printed its summary (glibc heap corruption; once a SIGSEGV). It comes with the WebGPU modules (Deno's
 * wgpu on Mesa llvmpipe); its cause inside the runtime was not found (README, Development). They therefore run in a
 * process of their own; should it crash at exit after a complete, passing summary (SIGABRT with nothing but glibc's
 * heap message, or a bare SIGSEGV), the crash is reported in a `note:` line and the summary counted. Every other
 * crash, any crash of the other process, a missing summary or a failed test counts as a failure.
 *
 * The runs get a fresh TMPDIR; anything the tests leave in it is reported and counted as a failure, so a test that
 * forgets to remove its temporary directory is caught.
 * @module
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";

/** Repository root (this file is scripts/test.ts). */
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * Test modules that create a WebGPU device; each runs in a process of its own. The run fails when a module outside
 * this list requests the webgpu backend ({@link unlistedWebGpuModules}), so a new one cannot slip into the main
 * process.
 */
export const WEBGPU_MODULES: readonly string[] = [
  "tests/conformance_test.ts",
  "tests/llama/llama_test.ts",
  "tests/peft/presets_webgpu_test.ts",
  "tests/webgpu_fused_test.ts",
  "tests/webgpu_program_test.ts",
  "tests/webgpu_test.ts",
];

/**
 * Test modules that measure their own process (its peak memory per load), so they run in a process of their own:
 * in the `--parallel` run, other modules' threads would count.
 */
export const SOLO_MODULES: readonly string[] = ["tests/io/untrusted_fuzz_test.ts"];

/** What one `deno test` process reported. */
export interface RunResult {
  passed: number;
  failed: number;
  ignored: number;
  /** Why the process counts as failed beyond its failed tests (crash, no summary), or "" */
  problem: string;
  /** A note for an accepted exit-time abort, or "" */
  note: string;
}

const SUMMARY = /^(ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/;
/** glibc's messages when it finds its heap corrupted (malloc_printerr). */
const GLIBC_HEAP = new RegExp(
  "^(double free or corruption|corrupted (size|double-linked)|" +
    "free\\(\\)|malloc\\(\\)|malloc_consolidate\\(\\)|munmap_chunk\\(\\)|realloc\\(\\))",
);

/**
 * Reads one `deno test` process's output and exit status. `exitCrashAccepted`: whether an exit-time crash after a
 * complete passing summary (SIGABRT with one glibc heap message, or SIGSEGV with no output) is accepted; only for
 * the WebGPU process, see the module comment.
 */
export function judge(
  output: string,
  status: { code: number; signal: Deno.Signal | null },
  exitCrashAccepted: boolean,
): RunResult {
  const lines = stripVTControlCharacters(output).split(/\r?\n/);
  let at = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (SUMMARY.test(lines[i])) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    return { passed: 0, failed: 0, ignored: 0, problem: `no test summary (exit ${describe(status)})`, note: "" };
  }
  const m = lines[at].match(SUMMARY)!;
  const r: RunResult = { passed: +m[2], failed: +m[3], ignored: +(m[4] ?? 0), problem: "", note: "" };
  const ok = m[1] === "ok" && r.failed === 0;
  if (status.code === 0 && status.signal === null) {
    if (!ok) r.problem = "the summary says FAILED but the process exited 0";
    return r;
  }
  if (!ok) return r; // failed tests: the summary already counts them
  const after = lines.slice(at + 1).map((l) => l.trim()).filter((l) => l !== "");
  // The exit-time crashes seen (README, Development): glibc's abort with one heap message, or a bare SIGSEGV.
  const heapAbort = status.signal === "SIGABRT" && after.length === 1 && GLIBC_HEAP.test(after[0]);
  const segfault = status.signal === "SIGSEGV" && after.length === 0;
  if (exitCrashAccepted && (heapAbort || segfault)) {
    r.note = `crashed at exit after its passing summary (${heapAbort ? `glibc: "${after[0]}"` : "SIGSEGV"}); ` +
      "accepted, see README, Development";
    return r;
  }
  r.problem = `exited with ${describe(status)} after its summary${after.length ? `: ${after.join(" / ")}` : ""}`;
  return r;
}

function describe(status: { code: number; signal: Deno.Signal | null }): string {
  return status.signal ? `signal ${status.signal}` : `code ${status.code}`;
}

/**
 * Runs `deno test args` in the repository root and returns the output and exit status; with `live`, the output is
 * also echoed as it comes (the caller prints the others' once every run has ended, so lines never interleave).
 */
async function denoTest(args: string[], env: Record<string, string>, live: boolean) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", ...args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>, to: { writeSync(p: Uint8Array): number }) => {
    for await (const chunk of stream) {
      if (live) to.writeSync(chunk);
      output += decoder.decode(chunk, { stream: true });
    }
  };
  await Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  const status = await child.status;
  return { output, status: { code: status.code, signal: status.signal } };
}

/** Test modules (Deno's default test file pattern) under `dir`, relative to the root, sorted. */
async function testModules(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (/(^|[._])test\.(ts|tsx|mts|js|mjs|jsx)$/.test(e.name)) out.push(relative(ROOT, p));
    }
  };
  await walk(join(ROOT, dir));
  return out.sort();
}

/** Modules that request the webgpu backend (directly or through the conformance suite) but are not listed. */
export async function unlistedWebGpuModules(modules: readonly string[]): Promise<string[]> {
  const uses = /setBackend\(\s*["']webgpu["']|createWebGpuBackend\(|conformance\/backends\.ts|util\/webgpu_suite\.ts/;
  const out: string[] = [];
  for (const m of modules) {
    if (!WEBGPU_MODULES.includes(m) && uses.test(await Deno.readTextFile(join(ROOT, m)))) out.push(m);
  }
  return out;
}

/** Everything left in `dir` (relative paths, top level only). */
async function leftovers(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name + (e.isDirectory ? "/" : ""));
  return out.sort();
}

if (import.meta.main) {
  const extra = Deno.args;
  const modules = await testModules("tests");
  const problems: string[] = [];
  for (const m of await unlistedWebGpuModules(modules)) {
    problems.push(`${m} uses WebGPU but is not in WEBGPU_MODULES (scripts/test.ts)`);
  }
  for (const m of WEBGPU_MODULES.filter((m) => !modules.includes(m))) {
    problems.push(`${m} is in WEBGPU_MODULES but does not exist`);
  }
  for (const m of SOLO_MODULES.filter((m) => !modules.includes(m))) {
    problems.push(`${m} is in SOLO_MODULES but does not exist`);
  }
  const tmp = await Deno.makeTempDir({ prefix: "knot-test-" });
  const env = { ...Deno.env.toObject(), TMPDIR: tmp };
  // The WebGPU modules in one process, the rest in another, both at once: the WebGPU one mostly waits on its
  // queue (llvmpipe: ~11 ms a wait; about a quarter of its wall time is CPU), so together they take little more
  // than the longer one alone. The other's output is echoed as it comes, the WebGPU one's once both have ended.
  // SOLO_MODULES get a third process (its output printed at the end too).
  const gpuModules = WEBGPU_MODULES.filter((m) => modules.includes(m));
  const runs: { name: string; args: string[]; exitCrashAccepted: boolean; live: boolean }[] = [
    {
      name: "WebGPU modules",
      args: ["-A", "--doc", ...extra, ...gpuModules],
      exitCrashAccepted: true,
      live: false,
    },
    {
      name: "other modules and README.md",
      args: [
        "-A",
        "--doc",
        "--parallel",
        `--ignore=${[...WEBGPU_MODULES, ...SOLO_MODULES].join(",")}`,
        ...extra,
        "tests/",
        "README.md",
      ],
      exitCrashAccepted: false,
      live: true,
    },
  ];
  const solo = SOLO_MODULES.filter((m) => modules.includes(m));
  if (solo.length) {
    runs.push({
      name: "modules that measure their own process",
      args: ["-A", ...extra, ...solo],
      exitCrashAccepted: false,
      live: false,
    });
  }
  let passed = 0, failed = 0, ignored = 0;
  const notes: string[] = [];
  const results = await Promise.all(runs.map((run) => denoTest(run.args, env, run.live)));
  for (const [i, run] of runs.entries()) {
    if (!run.live) Deno.stdout.writeSync(new TextEncoder().encode(results[i].output));
  }
  for (const [i, run] of runs.entries()) {
    const { output, status } = results[i];
    const r = judge(output, status, run.exitCrashAccepted);
    passed += r.passed;
    failed += r.failed;
    ignored += r.ignored;
    if (r.problem) problems.push(`${run.name}: ${r.problem}`);
    if (r.note) notes.push(`${run.name}: ${r.note}`);
  }
  const left = await leftovers(tmp);
  if (left.length) problems.push(`the tests left ${left.length} entries in their temp directory: ${left.join(", ")}`);
  await Deno.remove(tmp, { recursive: true });
  failed += problems.length;
  console.log();
  for (const n of notes) console.log(`note: ${n}`);
  for (const p of problems) console.log(`problem: ${p}`);
  console.log(`all: ${failed ? "FAILED" : "ok"} | ${passed} passed | ${failed} failed | ${ignored} ignored`);
  Deno.exit(failed ? 1 : 0);
}
