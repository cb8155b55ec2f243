/**
 * File helpers shared by the task loaders: where the data lives, the error
 * when it is absent, JSONL reading with line numbers, splits and limits.
 *
 * @module
 */
import { join, resolve } from "node:path";

/** Where the task data is expected by default: `../shared/data`, relative to the current working directory. */
export const DEFAULT_DATA_ROOT = "../shared/data";

/**
 * The Error for data that is not there: it names the path (as given and
 * absolute) and says that the data is not shipped with knot.
 */
export function missingData(task: string, path: string, what = "data"): Error {
  return new Error(
    `${task}: ${what} not found at "${path}" (${resolve(path)}). Task data is not shipped with knot; ` +
      `it is expected under ${DEFAULT_DATA_ROOT}/ relative to the working directory ` +
      `(see ${DEFAULT_DATA_ROOT}/README.md), or pass its location as the path.`,
  );
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** The split name `split` maps to in `table`, or an Error listing the task's splits. */
export function splitEntry<T>(task: string, table: Record<string, T>, split: string): T {
  if (!Object.hasOwn(table, split)) {
    throw new Error(`${task}: unknown split "${split}"; known splits: ${Object.keys(table).join(", ")}`);
  }
  return table[split];
}

/**
 * Resolves the file to read: `path` (default `DEFAULT_DATA_ROOT/<dir>`) when it
 * is a file, else `<path>/<file>`. Throws {@link missingData} when absent.
 */
export async function dataFile(task: string, path: string | undefined, dir: string, file: string): Promise<string> {
  const base = path ?? join(DEFAULT_DATA_ROOT, dir);
  const info = await statOrNull(base);
  if (info === null) throw missingData(task, base);
  if (info.isFile) return base;
  const full = join(base, file);
  const fi = await statOrNull(full);
  if (fi === null || !fi.isFile) throw missingData(task, full, `file ${file}`);
  return full;
}

/** One parsed JSONL record with its 1-based line number. */
export interface JsonlRow {
  line: number;
  value: unknown;
}

/**
 * Reads a JSONL file: one JSON value per line, blank lines skipped, `\r\n`
 * accepted. A malformed line is an Error naming the file and line number.
 */
export async function readJsonl(file: string): Promise<JsonlRow[]> {
  const text = await Deno.readTextFile(file);
  const rows: JsonlRow[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (l.trim() === "") continue;
    try {
      rows.push({ line: i + 1, value: JSON.parse(l) });
    } catch (e) {
      throw new Error(`${file}:${i + 1}: malformed JSON (${(e as Error).message})`);
    }
  }
  return rows;
}

/**
 * The string field `key` of a JSONL record, or an Error naming the file, the
 * line and the field.
 */
export function field(file: string, row: JsonlRow, key: string): string {
  const v = row.value;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new Error(`${file}:${row.line}: expected a JSON object, got ${Array.isArray(v) ? "an array" : typeof v}`);
  }
  if (!(key in v)) throw new Error(`${file}:${row.line}: missing field "${key}"`);
  const s = (v as Record<string, unknown>)[key];
  if (typeof s !== "string") throw new Error(`${file}:${row.line}: field "${key}" must be a string, got ${typeof s}`);
  return s;
}

/** The first `limit` items (all when undefined); a limit that is not a non-negative integer is an Error. */
export function applyLimit<T>(items: T[], limit: number | undefined): T[] {
  if (limit === undefined) return items;
  if (!Number.isInteger(limit) || limit < 0) throw new Error(`limit must be a non-negative integer, got ${limit}`);
  return items.slice(0, limit);
}

/** 32-bit FNV-1a hash of a string's UTF-16 code units: a fixed, platform-independent seed. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Collapses runs of whitespace (including line breaks) to one space and trims. */
export function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}
