/**
 * A run directory owns its record: `run.json` holds the settings, the code
 * version and the data fingerprint written when the run starts, its status,
 * and its result once finished. `--resume` checks a new invocation against it
 * ({@link resumeRun}) and a new run refuses to replace it silently
 * ({@link startRun}). `metrics.jsonl` beside it is one continuous log, trimmed
 * back to the checkpoint on resume ({@link trimLog}).
 *
 *   out/train_tl6/tl6/
 *     run.json            settings, code, data fingerprint, status, result
 *     metrics.jsonl       one JSON object per step, evaluation and the final result
 *     checkpoint/         checkpoint.safetensors (one file, committed by a rename)
 *     adapter/            adapter.safetensors + adapter.json (knot)
 *     peft/               adapter_model.safetensors + adapter_config.json (Hugging Face PEFT)
 *     loss.svg            training and validation loss
 * @module
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { writeTextAtomic } from "../io/atomic.ts";
import denoJson from "../deno.json" with { type: "json" };

/** One setting's value. */
export type SettingValue = string | number | boolean | null;

/** What a run was started with; every key is compared on resume. */
export type RunSettings = Record<string, SettingValue>;

/** Which code made a run: knot's version and, in a git checkout, its commit (with local changes flagged). */
export interface CodeVersion {
  /** knot's version (deno.json). */
  knot: string;
  /** The git commit, or null outside a git checkout. */
  commit: string | null;
  /** Whether the checkout had local changes. */
  dirty: boolean;
}

/** Where a run is: written at its start and at its end. */
export type RunStatus = "running" | "interrupted" | "nan" | "finished";

/** The contents of `run.json`. */
export interface RunRecord {
  /** Always "knot-run". */
  format: "knot-run";
  /** Layout version. */
  version: 1;
  /** When the run started (ISO 8601). */
  started: string;
  /** The settings a resume must match (see {@link SAFE_TO_CHANGE}). */
  settings: RunSettings;
  /** The code that made it. */
  code: CodeVersion;
  /** sha256 of the tokenised training and validation data. */
  data: string;
  /** Where the run is. */
  status: RunStatus;
  /** Steps completed when the status was written. */
  step: number;
  /** Settings changed on a resume (only those in {@link SAFE_TO_CHANGE}). */
  changes?: { atStep: number; setting: string; from: SettingValue; to: SettingValue }[];
  /** The outcome, once finished. */
  result?: Record<string, unknown>;
}

/**
 * Settings that may differ on `--resume`, and why: none of them changes a
 * parameter update, so the resumed run still equals an uninterrupted one.
 */
export const SAFE_TO_CHANGE: Readonly<Record<string, string>> = {
  evalLimit: "only the final task metric uses it (recorded in run.json's changes)",
  checkpointEvery: "checkpoints do not change the updates",
  data: "where the data lives; its content is checked by the data fingerprint",
};

/** The record file of a run directory. */
export const RUN_FILE = "run.json";

/** knot's version, from deno.json. */
export const KNOT_VERSION: string = denoJson.version;

let codeCache: CodeVersion | null = null;

/** knot's version and the git commit of the checkout it runs from (null outside git or without --allow-run). */
export async function codeVersion(): Promise<CodeVersion> {
  if (codeCache) return codeCache;
  let commit: string | null = null, dirty = false;
  try {
    const cwd = dirname(fileURLToPath(import.meta.url));
    const git = async (...args: string[]) => {
      const r = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "null" }).output();
      return r.success ? new TextDecoder().decode(r.stdout).trim() : null;
    };
    commit = await git("rev-parse", "HEAD");
    if (commit) dirty = ((await git("status", "--porcelain", "--untracked-files=no", "--", "..")) ?? "") !== "";
  } catch { /* not a file URL, no git, or no permission */ }
  return codeCache = { knot: KNOT_VERSION, commit, dirty };
}

/** The record in `dir`, or null when there is none. A record that is not valid is an Error naming the file. */
export async function readRun(dir: string): Promise<RunRecord | null> {
  const path = `${dir}/${RUN_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  let r: RunRecord;
  try {
    r = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (r?.format !== "knot-run" || r.version !== 1) throw new Error(`${path}: not a knot run record`);
  return r;
}

/** Writes `record` to `dir/run.json` atomically. */
export async function writeRun(dir: string, record: RunRecord): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeTextAtomic(`${dir}/${RUN_FILE}`, JSON.stringify(record, null, 2) + "\n");
}

/** `a` and `b`'s differing keys as "key: a → b". */
export function settingDiffs(a: RunSettings, b: RunSettings): { key: string; from: SettingValue; to: SettingValue }[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => (a[k] ?? null) !== (b[k] ?? null)).map((k) => ({
    key: k,
    from: a[k] ?? null,
    to: b[k] ?? null,
  }));
}

/** "rank 8 → 4, lr 0.01 → 0.02". */
export function formatDiffs(d: { key: string; from: SettingValue; to: SettingValue }[]): string {
  return d.map((x) => `${x.key} ${JSON.stringify(x.from)} → ${JSON.stringify(x.to)}`).join(", ");
}

/** A one-line description of a record: "finished at step 150" / "interrupted at step 40". */
export function describeRun(r: RunRecord): string {
  return `${r.status === "running" ? "started (not finished)" : r.status} at step ${r.step}`;
}

/**
 * Starts a new run in `dir`. A directory that already holds a run is refused
 * unless `overwrite`, which removes it first.
 */
export async function startRun(
  dir: string,
  settings: RunSettings,
  data: string,
  opts: { overwrite?: boolean } = {},
): Promise<RunRecord> {
  const old = await readRun(dir);
  if (old) {
    if (!opts.overwrite) {
      throw new Error(
        `${dir} already holds a run (${describeRun(old)}); resume it, replace it (overwrite), or write elsewhere`,
      );
    }
    await Deno.remove(dir, { recursive: true });
  }
  const record: RunRecord = {
    format: "knot-run",
    version: 1,
    started: new Date().toISOString(),
    settings,
    code: await codeVersion(),
    data,
    status: "running",
    step: 0,
  };
  await writeRun(dir, record);
  await Deno.remove(`${dir}/metrics.jsonl`).catch(() => {});
  return record;
}

/** What {@link resumeRun} found. */
export interface Resumed {
  /** The run's record. */
  record: RunRecord;
  /** Notes for the user: safe settings changed, a different code version. */
  notes: string[];
  /** Whether settings declared safe to change were changed (a finished run must then be scored again). */
  changed: boolean;
}

/**
 * Checks that `dir` holds a run made with `settings` on the same data, and
 * returns its record. A differing setting not in {@link SAFE_TO_CHANGE}, or
 * different data, is an Error naming them; a safe change is recorded; a
 * different code version is a note (resume is bit-identical only with the same
 * code).
 */
export async function resumeRun(dir: string, settings: RunSettings, data: string): Promise<Resumed> {
  const record = await readRun(dir);
  if (!record) throw new Error(`nothing to resume in ${dir}: it holds no ${RUN_FILE}`);
  const diffs = settingDiffs(record.settings, settings);
  const unsafe = diffs.filter((d) => !Object.hasOwn(SAFE_TO_CHANGE, d.key));
  if (unsafe.length) {
    throw new Error(
      `cannot resume ${dir}: it was started with other settings (${formatDiffs(unsafe)}); ` +
        `rerun with the recorded settings, or start a new run elsewhere`,
    );
  }
  if (record.data !== data) {
    throw new Error(
      `cannot resume ${dir}: its training or validation data differ from this run's ` +
        `(fingerprint ${record.data.slice(0, 12)}… recorded, ${data.slice(0, 12)}… now)`,
    );
  }
  const notes: string[] = [];
  const code = await codeVersion();
  const fmt = (c: CodeVersion) =>
    `knot ${c.knot}${c.commit ? ` @ ${c.commit.slice(0, 10)}` : ""}${c.dirty ? " with local changes" : ""}`;
  if (fmt(code) !== fmt(record.code)) {
    notes.push(
      `note: ${dir} was started with ${fmt(record.code)}, this is ${fmt(code)}; ` +
        `a resume is bit-identical to an uninterrupted run only with the same code`,
    );
  }
  if (diffs.length) {
    notes.push(`note: ${dir}: changed on resume (declared safe): ${formatDiffs(diffs)}`);
    record.changes = [
      ...(record.changes ?? []),
      ...diffs.map((d) => ({ atStep: record.step, setting: d.key, from: d.from, to: d.to })),
    ];
    record.settings = settings;
  }
  return { record, notes, changed: diffs.length > 0 };
}

/**
 * Trims the log `path` (JSON lines) back to what a checkpoint at `step` holds:
 * records of steps up to `step`, no final record, no torn line. Returns the
 * records kept.
 */
export async function trimLog(path: string, step: number): Promise<Record<string, unknown>[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const kept: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line);
    } catch {
      continue; // blank or torn by a kill
    }
    if (r && typeof r === "object" && !r.final && typeof r.step === "number" && r.step <= step) kept.push(r);
  }
  const out = kept.map((r) => JSON.stringify(r) + "\n").join("");
  if (out !== text) await writeTextAtomic(path, out);
  return kept;
}

/** sha256 (hex) of `value` as JSON. */
export async function fingerprint(value: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}
