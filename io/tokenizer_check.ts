/**
 * Checks a parsed `tokenizer.json` before `@huggingface/tokenizers` builds
 * anything from it: token ids must be dense indices (the library sizes its
 * id → token table by the largest id: an added token with id 1e8 cost 7 s and
 * 800 MB), the vocabulary and merges bounded, and every `Regex` pattern free
 * of the shapes a backtracking engine runs in exponential time (see
 * io/regex_safety.ts). Errors name the file and the JSON path.
 * @module
 */
import { isJsonObject, quote } from "./json.ts";
import { catastrophicReason } from "./regex_safety.ts";

/** Most vocabulary entries, merges or added tokens (Gemma's 262k vocabulary fits 16 times). */
export const MAX_VOCAB = 2 ** 22;

function fail(source: string, msg: string): Error {
  return new Error(`${source}: ${msg}`);
}

function short(x: unknown): string {
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

/** Throws naming `source` and the JSON path unless `json` passes the checks above. */
export function checkTokenizerJson(json: unknown, source: string): void {
  if (!isJsonObject(json)) throw fail(source, "expected a JSON object");
  const model = json.model;
  if (!isJsonObject(model)) throw fail(source, `"model" must be an object, got ${short(model)}`);
  // [where, id]: `where` is a vocab key (formatted only for an error) or a ready path.
  const ids: [string | { vocabKey: string }, unknown][] = [];
  let entries = 0;
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    entries += vocab.length; // Unigram: [[piece, score], ...], ids implicit
    if (model.unk_id !== undefined && model.unk_id !== null) ids.push(["model.unk_id", model.unk_id]);
  } else if (isJsonObject(vocab)) {
    for (const [k, v] of Object.entries(vocab)) ids.push([{ vocabKey: k }, v]);
    entries += ids.length;
  } else if (vocab !== undefined) {
    throw fail(source, `"model.vocab" must be an object or a list, got ${short(vocab)}`);
  }
  if (entries > MAX_VOCAB) throw fail(source, `"model.vocab" has ${entries} entries (at most ${MAX_VOCAB})`);
  if (Array.isArray(model.merges) && model.merges.length > MAX_VOCAB) {
    throw fail(source, `"model.merges" has ${model.merges.length} entries (at most ${MAX_VOCAB})`);
  }
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw fail(source, `"added_tokens" must be a list, got ${short(added)}`);
  if (added.length > MAX_VOCAB) throw fail(source, `"added_tokens" has ${added.length} entries (at most ${MAX_VOCAB})`);
  added.forEach((t, i) => {
    if (!isJsonObject(t) || typeof t.content !== "string" || t.content === "") {
      throw fail(source, `added_tokens[${i}] must be {id, content} with non-empty content, got ${short(t)}`);
    }
    ids.push([`added_tokens[${i}].id`, t.id]);
  });
  entries += added.length;
  // Ids index a table: allow gaps, but not a table much larger than the tokens it holds.
  const maxId = Math.min(MAX_VOCAB, 2 * entries + 1024);
  for (const [where, id] of ids) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= maxId) {
      throw fail(
        source,
        `${
          typeof where === "string" ? where : `model.vocab[${quote(where.vocabKey)}]`
        } must be a token id in [0, ${maxId}) (the file holds ${entries} tokens), got ${short(id)}`,
      );
    }
  }
  checkPatterns(json, source);
}

/** Every `{"Regex": pattern}` anywhere in the file (pre-tokenizers, normalizers, decoders). */
function checkPatterns(json: Record<string, unknown>, source: string): void {
  const stack: [unknown, string][] = [[json, ""]];
  while (stack.length) {
    const [node, path] = stack.pop()!;
    if (Array.isArray(node)) {
      node.forEach((v, i) => {
        if (typeof v === "object" && v !== null) stack.push([v, `${path}[${i}]`]);
      });
      continue;
    }
    if (!isJsonObject(node)) continue;
    const needsPattern = node.type === "Split" || node.type === "Replace";
    if (needsPattern && !Object.hasOwn(node, "pattern")) throw fail(source, `${path} (${node.type}) has no "pattern"`);
    if (Object.hasOwn(node, "pattern")) {
      const pat = node.pattern;
      const ok = isJsonObject(pat) && Object.keys(pat).length === 1 &&
        (typeof pat.Regex === "string" || typeof pat.String === "string");
      if (!ok) throw fail(source, `${path}.pattern must be {"Regex": string} or {"String": string}, got ${short(pat)}`);
    }
    if (Object.hasOwn(node, "Regex")) {
      const p = node.Regex;
      if (typeof p !== "string") throw fail(source, `${path}.Regex must be a string, got ${short(p)}`);
      const why = catastrophicReason(p);
      if (why) {
        throw fail(source, `pattern ${quote(p)} at ${path || "(top)"} is refused: ${why}`);
      }
    }
    for (const [k, v] of Object.entries(node)) {
      if (path === "" && k === "model") {
        // Only the model's small fields can hold patterns; its vocab and merges are data.
        if (isJsonObject(v)) {
          for (const [mk, mv] of Object.entries(v)) {
            if (mk !== "vocab" && mk !== "merges") stack.push([mv, `model.${mk}`]);
          }
        }
        continue;
      }
      if (typeof v === "object" && v !== null) stack.push([v, path ? `${path}.${k}` : k]);
    }
  }
}
