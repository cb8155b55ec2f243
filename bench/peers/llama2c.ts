/**
 * llama2.c peer: builds `run.c` (from ../shared/peers/llama2.c) with the system gcc, writes a random-weight
 * model of TinyStories-15M's shape in llama2.c's `.bin` format, and measures greedy decode tokens/s on 1
 * thread (`run`) and 2 threads (`runomp`, OpenMP), its timer read in microseconds ({@link microsecondTimer}).
 * Used by bench/peers/mod.ts; never by the tests.
 * @module
 */

/** Where the shared peers live (beside the project; absent on users' machines). */
export const LLAMA2C_DIR = new URL("../../../shared/peers/llama2.c", import.meta.url).pathname;
const TOKENIZER = new URL("../../../shared/tokenizers/llama2/tokenizer.bin", import.meta.url).pathname;
/** The real stories260K in llama2.c's format, with its 512-token tokenizer (issue 12's decode bar). */
export const STORIES260K = {
  model: new URL("../../../shared/models/stories260K/stories260K.bin", import.meta.url).pathname,
  tokenizer: new URL("../../../shared/models/stories260K/tok512.bin", import.meta.url).pathname,
};

/** Why llama2.c cannot run here, or null when it can. */
export function llama2cMissing(): string | null {
  for (const p of [`${LLAMA2C_DIR}/run.c`, TOKENIZER]) {
    try {
      Deno.statSync(p);
    } catch {
      return `${p} absent`;
    }
  }
  try {
    new Deno.Command("gcc", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
  } catch {
    return "gcc not installed";
  }
  return null;
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${code}): ${text.slice(-2000)}`);
  return text;
}

/**
 * The CPU the calling thread last ran on (Linux: field 39 of /proc/thread-self/stat), or null elsewhere. The
 * bench pins llama2.c's single thread there: each vCPU of the VM it was written on moves between speeds every few
 * seconds (stories260K's decode ~10.5K or ~18K tokens/s on one vCPU while the other read 4.6K–18.5K, traced side
 * by side), so a peer on the other vCPU is measured on another machine.
 */
export function currentCpu(): number | null {
  try {
    const stat = Deno.readTextFileSync("/proc/thread-self/stat");
    const cpu = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[36]);
    return Number.isInteger(cpu) && cpu >= 0 ? cpu : null;
  } catch {
    return null;
  }
}

/**
 * Pins the calling thread to CPU `cpu` (Linux `sched_setaffinity` through FFI), or lets it run anywhere again
 * (`null`). Returns whether it could. The stories260K comparison pins knot's main thread and llama2.c to one CPU a
 * pair, taking the CPUs in turn: this VM's two vCPUs ran stories260K's decode at 13.1–13.7K and 18.7–21.0K tokens/s
 * (knot pinned to each, three processes, 2026-12-01), and a thread left free moves between them.
 */
export function pinThread(cpu: number | null): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    const libc = Deno.dlopen(
      "libc.so.6",
      {
        sched_setaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
      } as const,
    );
    try {
      const mask = new Uint8Array(128); // cpu_set_t
      const n = navigator.hardwareConcurrency || 1;
      for (let c = 0; c < Math.min(n, 1024); c++) if (cpu === null || c === cpu) mask[c >> 3] |= 1 << (c & 7);
      return libc.symbols.sched_setaffinity(0, BigInt(mask.length), mask) === 0;
    } finally {
      libc.close();
    }
  } catch {
    return false;
  }
}

/** Whether `taskset` (util-linux) runs here. */
function hasTaskset(): boolean {
  try {
    return new Deno.Command("taskset", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Writes a llama2.c checkpoint with random weights: header (dim, hidden, layers, heads, kv heads, vocab,
 * seq_len; positive vocab = tied classifier), then the float32 arrays in run.c's order.
 */
function writeRandomModel(path: string, c: { dim: number; hidden: number; layers: number; heads: number }) {
  const vocab = 32000, seqLen = 256, L = c.layers, d = c.dim, h = c.hidden, hs = d / c.heads;
  const sizes = [
    vocab * d, // token embedding
    L * d, // attention RMSNorm
    L * d * d, // wq
    L * d * d, // wk
    L * d * d, // wv
    L * d * d, // wo
    L * d, // FFN RMSNorm
    L * h * d, // w1
    L * d * h, // w2
    L * h * d, // w3
    d, // final RMSNorm
    seqLen * hs, // two unused RoPE tables of seq_len × head_size/2
  ];
  const total = sizes.reduce((a, b) => a + b, 0);
  const bytes = new Uint8Array(28 + total * 4);
  new Int32Array(bytes.buffer, 0, 7).set([d, h, L, c.heads, c.heads, vocab, seqLen]);
  const w = new Float32Array(bytes.buffer, 28, total);
  let s = 12345;
  for (let i = 0; i < total; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    w[i] = ((s >>> 8) / 2 ** 24 - 0.5) * 0.1;
  }
  Deno.writeFileSync(path, bytes);
}

/**
 * run.c with its timer in microseconds: it times decode with a millisecond clock, and stories260K's 127 timed
 * tokens take 6–10 ms here, so its own figure jumps between 12,700, 14,111, 15,875, 18,143 and 21,167 tokens/s.
 * Only the clock's unit changes (and the tokens/s formula with it); the model code is run.c's.
 */
export function microsecondTimer(source: string): string {
  const edits: [string, string][] = [
    ["return time.tv_sec * 1000 + time.tv_nsec / 1000000;", "return time.tv_sec * 1000000 + time.tv_nsec / 1000;"],
    ["(pos-1) / (double)(end-start)*1000);", "(pos-1) / (double)(end-start)*1000000);"],
  ];
  for (const [from, to] of edits) {
    if (!source.includes(from)) throw new Error(`llama2.c: run.c no longer has \`${from}\`: update microsecondTimer`);
    source = source.replace(from, to);
  }
  return source;
}

/**
 * llama2.c built once in a temporary folder: `once(threads)` runs it and returns its tokens/s (one thread: pinned to
 * the calling thread's CPU where `pinned`, see {@link currentCpu}); close() removes it.
 */
export interface Llama2c {
  once(threads: 1 | 2): Promise<number>;
  close(): Promise<void>;
  /** Whether one-thread runs are pinned to the CPU the caller ran on. */
  readonly pinned: boolean;
}

/** Builds llama2.c's run.c (one thread, and OpenMP) for `steps` greedy tokens of a checkpoint (default: a random 15M). */
export async function openLlama2c(
  steps: number,
  checkpoint?: { model: string; tokenizer: string },
): Promise<Llama2c> {
  const dir = await Deno.makeTempDir({ prefix: "knot_llama2c_" });
  try {
    const src = `${dir}/run.c`;
    Deno.writeTextFileSync(src, microsecondTimer(Deno.readTextFileSync(`${LLAMA2C_DIR}/run.c`)));
    await run("gcc", ["-Ofast", "-march=native", src, "-lm", "-o", `${dir}/run`]);
    await run("gcc", ["-Ofast", "-march=native", "-fopenmp", src, "-lm", "-o", `${dir}/runomp`]);
    const model = checkpoint?.model ?? `${dir}/model.bin`;
    if (!checkpoint) writeRandomModel(model, { dim: 288, hidden: 768, layers: 6, heads: 6 });
    const args = [
      model,
      "-z",
      checkpoint?.tokenizer ?? TOKENIZER,
      "-t",
      "0",
      "-n",
      String(steps),
      "-i",
      "Once upon a time",
    ];
    const pinned = hasTaskset() && currentCpu() !== null;
    return {
      pinned,
      async once(threads) {
        const exe = `${dir}/${threads === 1 ? "run" : "runomp"}`, env = { OMP_NUM_THREADS: String(threads) };
        const cpu = threads === 1 && pinned ? currentCpu() : null;
        const out = cpu === null
          ? await run(exe, args, env)
          : await run("taskset", ["-c", String(cpu), exe, ...args], env);
        const m = out.match(/achieved tok\/s: ([\d.]+)/);
        if (!m) throw new Error(`llama2.c printed no tok/s: ${out.slice(-500)}`);
        return Number(m[1]);
      },
      close: () => Deno.remove(dir, { recursive: true }),
    };
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

/** The middle value (the upper middle of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1];
}
