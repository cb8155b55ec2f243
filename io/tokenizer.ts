/**
 * Tokenizers from Hugging Face `tokenizer.json` files, through the pure-JS
 * `@huggingface/tokenizers`, with BOS/EOS handling taken from
 * `tokenizer_config.json` and the model's config.
 * @module
 */
// A full specifier (not an import-map name) so that mod.ts also works when imported from another project.
// deno-lint-ignore no-import-prefix
import { Tokenizer as HfTokenizer } from "npm:@huggingface/tokenizers@0.2.0";
import { isJsonObject, type JsonLimits, parseJson, SIDE_FILE_LIMITS } from "./json.ts";
import { readTextLimited } from "./read_text.ts";
import { checkTokenizerJson } from "./tokenizer_check.ts";

/** Budgets for tokenizer.json text (Gemma 3's, the largest common one, is 33 MB). */
export const TOKENIZER_LIMITS: Readonly<JsonLimits> = Object.freeze({
  maxChars: 64 * 2 ** 20,
  maxDepth: 32,
  maxTopLevelEntries: 64,
});

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Prepend BOS (default: the tokenizer config's `add_bos_token`, else true when a BOS token exists). */
  addBos?: boolean;
  /** Append EOS (default: the tokenizer config's `add_eos_token`, else false). */
  addEos?: boolean;
}

function tokenId(hf: HfTokenizer, token: unknown): number | null {
  const content = typeof token === "string" ? token : (token as { content?: string } | null)?.content;
  if (!content) return null;
  return hf.token_to_id(content) ?? null;
}

/** A text tokenizer: `encode` to ids, `decode` to text. */
export class Tokenizer {
  /** Id of the beginning-of-sequence token, or null. */
  readonly bosId: number | null;
  /** Id of the end-of-sequence token, or null. */
  readonly eosId: number | null;
  /** Number of entries in the vocabulary (including added tokens). */
  readonly vocabSize: number;
  readonly #hf: HfTokenizer;
  readonly #addBos: boolean;
  readonly #addEos: boolean;
  readonly #source: string;

  /**
   * From the parsed `tokenizer.json` and (optionally) `tokenizer_config.json`
   * objects. Both are checked first (see io/tokenizer_check.ts): token ids
   * dense and in range, sizes bounded, and no `Regex` pattern that could
   * backtrack exponentially (such a pattern is refused, naming it).
   */
  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown> = {}, source = "tokenizer.json") {
    checkTokenizerJson(tokenizerJson, source);
    if (!isJsonObject(tokenizerConfig)) {
      throw new Error(`${source}: the tokenizer config must be a JSON object, got ${JSON.stringify(tokenizerConfig)}`);
    }
    try {
      this.#hf = new HfTokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new Error(`${source}: not a valid Hugging Face tokenizer (${(e as Error).message})`);
    }
    this.bosId = tokenId(this.#hf, tokenizerConfig.bos_token ?? "<s>");
    this.eosId = tokenId(this.#hf, tokenizerConfig.eos_token ?? "</s>");
    this.vocabSize = this.#hf.get_vocab().size; // a Map (Object.keys of it is empty)
    this.#addBos = typeof tokenizerConfig.add_bos_token === "boolean"
      ? tokenizerConfig.add_bos_token
      : this.bosId !== null;
    this.#addEos = tokenizerConfig.add_eos_token === true;
    this.#source = source;
    // A component the library accepts but cannot run (e.g. a post-processor without its template) would
    // otherwise fail on the first encode with a TypeError: probe once here so the load itself is refused.
    const probe = "Once upon a time, 1 2 3! é";
    this.decode(this.encode(probe), { skipSpecial: false });
  }

  /** Runs a library call, turning its failures into an Error naming the tokenizer file. */
  #call<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw new Error(`${this.#source}: ${what} failed (${e instanceof Error ? e.message : e})`, { cause: e });
    }
  }

  /**
   * From the texts of `tokenizer.json` and (optionally) `tokenizer_config.json`,
   * e.g. fetched or read from an `<input type=file>` in a browser. Invalid
   * JSON is an Error naming `source` (the tokenizer file's name or path).
   */
  static fromJson(tokenizerJson: string, tokenizerConfig?: string, source = "tokenizer.json"): Tokenizer {
    const json = parseJson(tokenizerJson, TOKENIZER_LIMITS, (m) => new Error(`${source}: ${m}`));
    if (!isJsonObject(json)) throw new Error(`${source}: expected a JSON object`);
    let config: Record<string, unknown> = {};
    if (tokenizerConfig !== undefined) {
      const configSource = source.endsWith("tokenizer.json")
        ? source.replace(/tokenizer\.json$/, "tokenizer_config.json")
        : `${source} (tokenizer config)`;
      const c = parseJson(tokenizerConfig, SIDE_FILE_LIMITS, (m) => new Error(`${configSource}: ${m}`));
      if (!isJsonObject(c)) throw new Error(`${configSource}: expected a JSON object`);
      config = c;
    }
    return new Tokenizer(json, config, source);
  }

  /** Token ids of `text`, with BOS/EOS as configured (see {@link EncodeOptions}). */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.#call("encode", () => this.#hf.encode(text, { add_special_tokens: false }).ids);
    const { addBos = this.#addBos, addEos = this.#addEos } = opts;
    if (addBos && this.bosId !== null) ids.unshift(this.bosId);
    if (addEos && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  /** Text of `ids` (special tokens skipped unless `skipSpecial` is false). */
  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    if (ids.length === 0) return ""; // @huggingface/tokenizers throws on an empty list
    const list = [...ids];
    return this.#call("decode", () => this.#hf.decode(list, { skip_special_tokens: opts.skipSpecial ?? true }));
  }

  /** The string of one token id (e.g. "▁the"), or undefined. */
  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id) ?? undefined;
  }
}

/**
 * Loads `tokenizer.json` (and `tokenizer_config.json` if present) from a model
 * directory (Deno only; in a browser use {@link Tokenizer.fromJson}). A missing
 * tokenizer is an Error naming the files looked for.
 * @example
 * ```ts ignore
 * const tok = await loadTokenizer("models/stories260K");
 * tok.decode(tok.encode("Once upon a time"));
 * ```
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const path = `${dir}/tokenizer.json`;
  try {
    await Deno.stat(path);
  } catch {
    throw new Error(
      `loadTokenizer: no tokenizer in ${dir}: looked for ${path} (a Hugging Face tokenizer.json; ` +
        `tokenizer.model / sentencepiece files are not read)`,
    );
  }
  const text = await readTextLimited(path, TOKENIZER_LIMITS.maxChars, (m) => new Error(`${path}: ${m}`));
  const configPath = `${dir}/tokenizer_config.json`;
  let config: string | undefined;
  try {
    await Deno.stat(configPath);
    config = await readTextLimited(configPath, SIDE_FILE_LIMITS.maxChars, (m) => new Error(`${configPath}: ${m}`));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return Tokenizer.fromJson(text, config, path);
}
