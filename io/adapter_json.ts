/**
 * The schema of knot's `adapter.json`, checked against the base model before
 * anything is read from `adapter.safetensors`: every site must be a linear
 * node (or fused group) of the base with the recorded widths, every leaf a
 * known part (A, B, u, v) of a listed site with the shape its part and rank
 * imply, every tie group consistent, every trainable base leaf a leaf of the
 * base, and `stored` exactly the storage paths those leaves need. Anything
 * else is an Error naming the file and the field, so a crafted or damaged
 * file can neither load silently wrong nor place a tensor outside the plan's
 * sites (no path reaches `Object.prototype`).
 * @module
 */
import { PROTO_KEYS } from "../core/proto_keys.ts";
import { initializerFrom } from "../peft/initializers.ts";
import type { LeafSpec, Part, Site } from "../peft/plan.ts";
import { isJsonObject, quote } from "./json.ts";

/** adapter.json after validation: sites, leaves (initializers as `{name, args}`) and the rest. */
export interface CheckedAdapterJson {
  meta: Record<string, unknown>;
  sites: Site[];
  leaves: (Omit<LeafSpec, "init"> & { init: { name: string; args: Record<string, number> } })[];
  baseTrainable: string[];
  /** Storage paths the adapter's safetensors file must hold, exactly. */
  stored: string[];
}

const PARTS: readonly Part[] = ["A", "B", "u", "v"];

/** Most sites or leaves one adapter.json may list (a 405B model with every linear adapted: ~900 sites). */
const MAX_ENTRIES = 100_000;

/** A dotted path of plain segments: no empty segment, no prototype key. */
function checkPath(p: unknown, fail: (m: string) => Error, what: string): string {
  if (typeof p !== "string" || p === "" || p.length > 1000) {
    throw fail(`${what} must be a non-empty dotted path, got ${short(p)}`);
  }
  for (const seg of p.split(".")) {
    if (seg === "" || PROTO_KEYS.has(seg)) throw fail(`${what} ${quote(p)} has an invalid segment ${quote(seg)}`);
  }
  return p;
}

function short(x: unknown): string {
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}

function positiveInt(x: unknown, fail: (m: string) => Error, what: string): number {
  if (!Number.isSafeInteger(x) || (x as number) <= 0) throw fail(`${what} must be a positive integer, got ${short(x)}`);
  return x as number;
}

function list(x: unknown, fail: (m: string) => Error, what: string, max = MAX_ENTRIES): unknown[] {
  if (!Array.isArray(x)) throw fail(`${what} must be a list, got ${short(x)}`);
  if (x.length > max) throw fail(`${what} lists ${x.length} entries (at most ${max})`);
  return x;
}

function checkSite(raw: unknown, i: number, base: Map<string, number[]>, fail: (m: string) => Error): Site {
  const where = `sites[${i}]`;
  if (!isJsonObject(raw)) throw fail(`${where} must be an object, got ${short(raw)}`);
  const path = checkPath(raw.path, fail, `${where}.path`);
  const inW = positiveInt(raw.in, fail, `${where}.in`), out = positiveInt(raw.out, fail, `${where}.out`);
  let fusedOf: string[] | null = null, outSplit: number[] | null = null;
  let shapes: (number[] | undefined)[];
  if (raw.fusedOf === null || raw.fusedOf === undefined) {
    shapes = [base.get(`${path}.weight`)];
  } else {
    fusedOf = list(raw.fusedOf, fail, `${where}.fusedOf`, 64).map((m, k) => {
      if (typeof m !== "string" || m === "" || m.includes(".") || PROTO_KEYS.has(m)) {
        throw fail(`${where}.fusedOf[${k}] must be a sibling's name, got ${short(m)}`);
      }
      return m;
    });
    if (!fusedOf.length) throw fail(`${where}.fusedOf is empty`);
    const parent = path.split(".").slice(0, -1).join(".");
    shapes = fusedOf.map((m) => base.get(parent ? `${parent}.${m}.weight` : `${m}.weight`));
    outSplit = list(raw.outSplit, fail, `${where}.outSplit`, 64).map((d, k) =>
      positiveInt(d, fail, `${where}.outSplit[${k}]`)
    );
    if (shapes.some((s, k) => s?.[0] !== outSplit![k])) {
      throw fail(`${where}: outSplit ${short(outSplit)} does not match the rows of ${quote(path)}'s members`);
    }
  }
  const rows = shapes.reduce((acc, s) => acc + (s?.length === 2 ? s[0] : NaN), 0);
  if (shapes.some((s) => !s || s.length !== 2 || s[1] !== inW) || rows !== out) {
    throw fail(`site ${quote(path)} (in ${inW}, out ${out}) does not exist with those shapes in the base model`);
  }
  return { path, in: inW, out, fusedOf, outSplit };
}

function checkLeaf(
  raw: unknown,
  i: number,
  sites: Map<string, Site>,
  fail: (m: string) => Error,
): CheckedAdapterJson["leaves"][number] {
  const where = `leaves[${i}]`;
  if (!isJsonObject(raw)) throw fail(`${where} must be an object, got ${short(raw)}`);
  const siteName = checkPath(raw.site, fail, `${where}.site`);
  const site = sites.get(siteName);
  if (!site) throw fail(`${where}: site ${quote(siteName)} is not one of the sites adapter.json lists`);
  const part = raw.part as Part;
  if (!PARTS.includes(part)) throw fail(`${where}: unknown part ${short(raw.part)} (parts are A, B, u, v)`);
  if (raw.path !== `${siteName}.${part}`) {
    throw fail(`${where}: path ${short(raw.path)} is not its site and part (${quote(`${siteName}.${part}`)})`);
  }
  const shape = list(raw.shape, fail, `${where}.shape`, 2).map((d, k) => positiveInt(d, fail, `${where}.shape[${k}]`));
  const r = part === "B" ? shape[1] : shape[0];
  const expected = { A: [r, site.in], B: [site.out, r], u: [r], v: [site.out] }[part];
  if (shape.length !== expected.length || shape.some((d, k) => d !== expected[k])) {
    throw fail(
      `${where}: ${part} at ${quote(siteName)} must have shape ${
        short(expected)
      } (in ${site.in}, out ${site.out}), got ${short(shape)}`,
    );
  }
  if (typeof raw.trainable !== "boolean") throw fail(`${where}.trainable must be true or false`);
  let group: string | null = null;
  if (raw.group !== null && raw.group !== undefined) {
    if (typeof raw.group !== "string" || raw.group === "" || raw.group.includes(".") || PROTO_KEYS.has(raw.group)) {
      throw fail(`${where}.group must be null or a tie group name (no dots), got ${short(raw.group)}`);
    }
    group = raw.group;
  }
  const init = raw.init;
  if (!isJsonObject(init) || typeof init.name !== "string") {
    throw fail(`${where}.init must be {name, args}, got ${short(init)}`);
  }
  const args = init.args ?? {};
  if (!isJsonObject(args) || Object.values(args).some((v) => typeof v !== "number" || !Number.isFinite(v))) {
    throw fail(`${where}.init.args must be an object of finite numbers, got ${short(init.args)}`);
  }
  try {
    initializerFrom({ name: init.name, args: args as Record<string, number> });
  } catch (e) {
    throw fail(`${where}.init: ${(e as Error).message}`);
  }
  return {
    path: raw.path as string,
    site: siteName,
    part,
    shape,
    trainable: raw.trainable,
    init: { name: init.name, args: { ...args } as Record<string, number> },
    group,
  };
}

/**
 * Validates a parsed adapter.json against the base model's leaf shapes.
 * `fail` makes the Error (it prefixes the file's path).
 */
export function checkAdapterJson(
  raw: Record<string, unknown>,
  baseShapes: Map<string, number[]>,
  fail: (m: string) => Error,
): CheckedAdapterJson {
  const meta = raw.meta ?? {};
  if (!isJsonObject(meta)) throw fail(`"meta" must be an object, got ${short(raw.meta)}`);
  if (raw.transforms !== undefined) list(raw.transforms, fail, `"transforms"`);
  const sites = list(raw.sites, fail, `"sites"`).map((s, i) => checkSite(s, i, baseShapes, fail));
  const siteMap = new Map<string, Site>();
  for (const s of sites) {
    if (siteMap.has(s.path)) throw fail(`site ${quote(s.path)} is listed twice`);
    siteMap.set(s.path, s);
  }
  const leaves = list(raw.leaves, fail, `"leaves"`).map((l, i) => checkLeaf(l, i, siteMap, fail));
  const seen = new Set<string>();
  const groups = new Map<string, (typeof leaves)[number]>();
  for (const l of leaves) {
    if (seen.has(l.path)) throw fail(`leaf ${quote(l.path)} is listed twice`);
    seen.add(l.path);
    if (l.group === null) continue;
    const first = groups.get(l.group);
    if (!first) groups.set(l.group, l);
    else if (first.shape.join() !== l.shape.join() || first.trainable !== l.trainable) {
      throw fail(
        `tie group ${quote(l.group)} joins ${quote(first.path)} ${short(first.shape)} and ${quote(l.path)} ${
          short(l.shape)
        }, which differ in shape or trainability`,
      );
    }
  }
  const baseTrainable = list(raw.baseTrainable ?? [], fail, `"baseTrainable"`).map((p, i) => {
    const path = checkPath(p, fail, `baseTrainable[${i}]`);
    if (!baseShapes.has(path)) throw fail(`baseTrainable[${i}]: ${quote(path)} is not a leaf of the base model`);
    return path;
  });
  if (new Set(baseTrainable).size !== baseTrainable.length) throw fail(`"baseTrainable" lists a leaf twice`);
  const expected = new Set([
    ...leaves.map((l) => (l.group !== null ? `tied.${l.group}` : `sites.${l.path}`)),
    ...baseTrainable.map((p) => `base.${p}`),
  ]);
  const stored = list(raw.stored, fail, `"stored"`, MAX_ENTRIES * 2);
  const storedSet = new Set(stored);
  const missing = [...expected].filter((n) => !storedSet.has(n));
  const extra = stored.filter((n) => typeof n !== "string" || !expected.has(n));
  if (missing.length || extra.length || storedSet.size !== stored.length) {
    throw fail(
      `"stored" must list each storage path of the leaves once (${
        missing.length ? `missing ${missing.slice(0, 3).map(quote).join(", ")}` : ""
      }${missing.length && extra.length ? "; " : ""}${
        extra.length ? `not leaves of the plan: ${extra.slice(0, 3).map((n) => short(n)).join(", ")}` : ""
      }${!missing.length && !extra.length ? "a path is listed twice" : ""})`,
    );
  }
  return { meta, sites, leaves, baseTrainable, stored: [...expected] };
}
