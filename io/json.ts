/**
 * JSON from untrusted files, with budgets checked before `JSON.parse` runs:
 * the text's size, its nesting depth and the number of entries of its
 * top-level object are counted by one linear scan that also finds duplicate
 * keys (which `JSON.parse` would silently resolve to the last one). A file
 * over a budget is refused at once, so 100 MB of `[` or two million
 * zero-size tensors cost one pass over the bytes, not minutes and gigabytes.
 *
 * Every failure is an `Error` made by the caller's `fail(message)`, so each
 * format keeps its own message prefix (`safetensors: <path>: …`, `<path>: …`).
 * No Deno APIs: usable in a browser.
 * @module
 */

/** Budgets of {@link scanJson} and {@link parseJson}. */
export interface JsonLimits {
  /** Largest text accepted, in UTF-16 code units (about bytes for ASCII JSON). */
  maxChars: number;
  /** Deepest nesting of objects and arrays (the top level is depth 1). */
  maxDepth: number;
  /** Most entries in the top-level object (or nested containers in a top-level array). */
  maxTopLevelEntries: number;
}

/** Defaults for small side files (config.json, adapter.json, adapter_config.json, tokenizer_config.json). */
export const SIDE_FILE_LIMITS: Readonly<JsonLimits> = Object.freeze({
  maxChars: 16 * 2 ** 20,
  maxDepth: 32,
  maxTopLevelEntries: 100_000,
});

/** Quotes a string for an error message (JSON-escaped, truncated if long). */
export function quote(s: string): string {
  const j = JSON.stringify(s);
  return j.length > 120 ? `${j.slice(0, 100)}…" (${s.length} chars)` : j;
}

/** How {@link scanJson}'s errors word the top level. */
export interface JsonNames {
  /** What the top-level entries are, plural (default "entries"). */
  entries?: string;
  /** What a top-level key is (default "key"). */
  topKey?: string;
}

/** Key set of one open object: a short array (most objects) that becomes a Set when large. */
type Keys = { list: string[]; set: Set<string> | null };

function addKey(keys: Keys, key: string): boolean {
  if (keys.set) {
    if (keys.set.has(key)) return false;
    keys.set.add(key);
    return true;
  }
  if (keys.list.includes(key)) return false;
  keys.list.push(key);
  if (keys.list.length > 16) keys.set = new Set(keys.list);
  return true;
}

/**
 * Checks `text` against `limits` and for duplicate keys, in one pass, without
 * parsing it. Tolerates malformed JSON (an unterminated string ends the scan;
 * `JSON.parse` then reports the syntax error). `names` words the errors:
 * what the top-level entries are (e.g. "tensors") and what a top-level key is
 * (e.g. "tensor name").
 */
export function scanJson(
  text: string,
  limits: JsonLimits,
  fail: (msg: string) => Error,
  names: JsonNames = {},
): void {
  const { entries: what = "entries", topKey = "key" } = names;
  if (text.length > limits.maxChars) {
    throw fail(`${text.length} characters of JSON, over the limit of ${limits.maxChars}`);
  }
  // One entry per open container: its keys for objects, null for arrays.
  const stack: (Keys | null)[] = [];
  let expectKey = false;
  let topLevel = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j++;
        } else if (d === 0x22) break;
      }
      if (j >= n) return; // unterminated string: JSON.parse will say where
      const keys = stack.length ? stack[stack.length - 1] : null;
      if (expectKey && keys) {
        let key: string;
        if (!escaped) key = text.slice(i + 1, j);
        else {
          try {
            key = JSON.parse(text.slice(i, j + 1)) as string;
          } catch {
            return; // a bad escape: JSON.parse will report it
          }
        }
        if (!addKey(keys, key)) {
          throw fail(stack.length === 1 ? `duplicate ${topKey} ${quote(key)}` : `duplicate key ${quote(key)}`);
        }
        if (stack.length === 1 && ++topLevel > limits.maxTopLevelEntries) {
          throw fail(`more than ${limits.maxTopLevelEntries} ${what} in the top-level object`);
        }
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length === 1 && stack[0] === null && ++topLevel > limits.maxTopLevelEntries) {
        throw fail(`more than ${limits.maxTopLevelEntries} ${what} in the top-level array`);
      }
      if (stack.length >= limits.maxDepth) {
        throw fail(`JSON nested deeper than ${limits.maxDepth} levels (at character ${i})`);
      }
      stack.push(c === 0x7b ? { list: [], set: null } : null);
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    }
  }
}

/**
 * Parses untrusted JSON text after {@link scanJson}: refuses it over budget,
 * with duplicate keys, or malformed (naming the problem through `fail`).
 */
export function parseJson(
  text: string,
  limits: JsonLimits,
  fail: (msg: string) => Error,
  names?: JsonNames,
): unknown {
  scanJson(text, limits, fail, names);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw fail(`invalid JSON (${e instanceof Error ? e.message : e})`);
  }
}

/** True for a plain JSON object (not null, not an array). */
export function isJsonObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
