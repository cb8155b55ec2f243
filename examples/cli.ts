/**
 * What every example does with its command line, written once: flags parsed
 * strictly, numbers and names checked, and any mistake answered with one
 * clear message on stderr and exit code 2 — no stack trace. Programming errors
 * (TypeError and the like) still print their stack, with exit code 1.
 *
 * @example
 * ```ts ignore
 * import { intFlag, parseFlags, runMain } from "./cli.ts";
 * runMain(async (args) => {
 *   const f = parseFlags(args, { steps: { type: "string", default: "10" } });
 *   const steps = intFlag("steps", f.steps, 1);
 *   return 0;
 * });
 * ```
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { importPeftLora, loadAdapter } from "../io/mod.ts";
import type { LlamaParams } from "../llama/mod.ts";
import { PRESET_NAMES } from "../peft/mod.ts";
import { getTask, type Task, taskNames } from "../apps/tasks/index.ts";

/** A mistake in the command line: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

/** Parses `args` strictly against `options`; an unknown flag or a missing value is a {@link UsageError}. */
export function parseFlags<T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** `--name` as an integer >= `min`. */
export function intFlag(name: string, value: string | undefined, min = 0): number {
  const n = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value ?? "")}`);
  }
  return n;
}

/** `--name` as a finite number > 0. */
export function positiveFlag(name: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || value.trim() === "" || !(n > 0) || !Number.isFinite(n)) {
    throw new UsageError(`--${name} must be a positive number, got ${JSON.stringify(value ?? "")}`);
  }
  return n;
}

/** A comma-separated list, trimmed, empty items dropped. */
export function listFlag(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter(Boolean);
}

/** A PEFT preset name in any case ("TL6", "LoRA"), as its canonical lower-case name. */
export function methodFlag(name: string, flag = "method"): string {
  const m = name.trim().toLowerCase();
  if (!PRESET_NAMES.includes(m)) {
    throw new UsageError(`--${flag}: unknown method "${name}"; known: ${PRESET_NAMES.join(", ")} (any case)`);
  }
  return m;
}

/** The names `--task` accepts: the built-in task first, then the paper's tasks and jsonl. */
export const TASK_NAMES: readonly string[] = taskNames;

/** `--task NAME` (any case) as a task. */
export function taskFlag(name: string): Task {
  const t = name.trim().toLowerCase();
  if (!taskNames.includes(t)) throw new UsageError(`--task: unknown task "${name}"; known: ${TASK_NAMES.join(", ")}`);
  return getTask(t);
}

/** Long "a: x; y; z; …" lists (e.g. every tensor a checkpoint lacks) as one item per line, the first 10 shown. */
export function formatMessage(message: string, show = 10): string {
  const parts = message.split("; ");
  if (parts.length < 4) return message;
  const cut = parts[0].lastIndexOf(": ");
  const head = cut >= 0 ? parts[0].slice(0, cut + 1) : `${parts.length} problems:`;
  const items = [cut >= 0 ? parts[0].slice(cut + 2) : parts[0], ...parts.slice(1)];
  const lines = items.slice(0, show).map((s) => `  - ${s}`);
  if (items.length > show) lines.push(`  … and ${items.length - show} more`);
  return `${head} ${items.length} problems\n${lines.join("\n")}`;
}

/** Errors made by code rather than by input: these keep their stack trace. */
function isBug(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError ||
    e instanceof SyntaxError || !(e instanceof Error);
}

/**
 * Runs `main(Deno.args)` and exits with its code. A {@link UsageError} or any
 * other Error from bad input (a file, a value, a task, a model that does not
 * match its config) prints `error: <message>` on stderr and exits 2.
 */
export async function runMain(main: (args: string[]) => Promise<number>): Promise<never> {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    if (isBug(e)) {
      console.error(e);
      Deno.exit(1);
    }
    const hint = e instanceof UsageError ? "\n\nRun with --help to see every flag." : "";
    console.error(`error: ${formatMessage((e as Error).message)}${hint}`);
    Deno.exit(2);
  }
  Deno.exit(code);
}

/**
 * `--adapter DIR` applied to `params`: a knot adapter (adapter.json), a
 * Hugging Face PEFT LoRA adapter (adapter_config.json), or a run directory of
 * examples/train_tl6.ts holding `adapter/`. Returns the adapted parameters and
 * a description.
 */
export async function adapterFlag(
  dir: string,
  params: LlamaParams,
): Promise<{ params: LlamaParams; description: string }> {
  const d = dir.replace(/\/+$/, "") || "/";
  const isFile = (p: string) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  };
  const knotDir = isFile(`${d}/adapter.json`) ? d : isFile(`${d}/adapter/adapter.json`) ? `${d}/adapter` : null;
  if (knotDir) {
    const a = await loadAdapter(knotDir, params);
    return { params: a.plan.build(a.trainable, a.frozen) as LlamaParams, description: `knot adapter ${knotDir}` };
  }
  const peftDir = isFile(`${d}/adapter_config.json`) ? d : isFile(`${d}/peft/adapter_config.json`) ? `${d}/peft` : null;
  if (peftDir) {
    const a = await importPeftLora(peftDir, params);
    return { params: a.plan.build(a.trainable, a.frozen) as LlamaParams, description: `PEFT adapter ${peftDir}` };
  }
  throw new UsageError(
    `--adapter: ${d} holds no adapter: expected adapter.json (knot), adapter_config.json (PEFT), ` +
      `or a run directory with adapter/ inside`,
  );
}
