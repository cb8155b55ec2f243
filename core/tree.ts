/**
 * Parameter trees: nested plain objects and arrays with tensor leaves.
 * Paths are dotted (`layers.3.attn.q.weight`); patterns are globs over path
 * segments: `*` one segment, `**` any number (including none), `{a,b}`
 * alternatives, and `*` inside a segment (`*_proj`). A pattern that matches
 * nothing is an error, never a silent no-op.
 *
 * Positions left empty by {@link partition} hold `null`; {@link combine}
 * fills them back (Equinox's partition/combine).
 *
 * Keys that name prototype machinery (`__proto__`, `constructor`,
 * `prototype`) are never tree nodes: every walk and every path refuses them
 * with an Error, so a tree or path read from a file cannot reach
 * `Object.prototype`.
 * @module
 */
import { isTensor, type Tensor } from "./tensor.ts";
import { PROTO_KEYS } from "./proto_keys.ts";

/** A tree of tensors: a tensor, or arrays/objects of trees. `null` marks an empty position. */
export type Tree = Tensor | null | undefined | readonly Tree[] | { readonly [k: string]: Tree };

/** A predicate on leaves, or a glob pattern on their paths. */
export type Where = string | ((path: string, leaf: Tensor) => boolean);

function checkKey(key: string, prefix: string): void {
  if (PROTO_KEYS.has(key)) {
    throw new Error(
      `tree: key ${JSON.stringify(key)} at "${join(prefix, key)}" is not allowed (prototype keys are never tree nodes)`,
    );
  }
}

/** Own enumerable entries of a plain object, refusing prototype keys. */
function ownEntries(x: Record<string, unknown>, prefix: string): [string, unknown][] {
  const out = Object.entries(x);
  for (const [k] of out) checkKey(k, prefix);
  return out;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== "object") return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

function join(prefix: string, key: string | number): string {
  return prefix === "" ? String(key) : `${prefix}.${key}`;
}

/** Calls `fn(path, leaf)` for every tensor leaf, depth-first in key order. */
export function forEachLeaf(tree: unknown, fn: (path: string, leaf: Tensor) => void, prefix = ""): void {
  if (isTensor(tree)) fn(prefix, tree);
  else if (Array.isArray(tree)) tree.forEach((v, i) => forEachLeaf(v, fn, join(prefix, i)));
  else if (isPlainObject(tree)) { for (const [k, v] of ownEntries(tree, prefix)) forEachLeaf(v, fn, join(prefix, k)); }
  else if (tree !== null && tree !== undefined && typeof tree === "object") {
    throw new Error(
      `tree: unsupported node at "${prefix}" (${
        Object.getPrototypeOf(tree)?.constructor?.name
      }); use plain objects, arrays and tensors`,
    );
  }
}

/** A new tree of the same structure with each leaf replaced by `fn(leaf, path)`. Non-tensor values are kept. */
export function map<T extends Tree>(tree: T, fn: (leaf: Tensor, path: string) => Tensor | null): T {
  return mapAt(tree, fn, "") as T;
}

function mapAt(tree: unknown, fn: (leaf: Tensor, path: string) => unknown, prefix: string): unknown {
  if (isTensor(tree)) return fn(tree, prefix);
  if (Array.isArray(tree)) return tree.map((v, i) => mapAt(v, fn, join(prefix, i)));
  if (isPlainObject(tree)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of ownEntries(tree, prefix)) out[k] = mapAt(v, fn, join(prefix, k));
    return out;
  }
  return tree;
}

/** The tensor leaves, in path order. */
export function leaves(tree: unknown): Tensor[] {
  const out: Tensor[] = [];
  forEachLeaf(tree, (_, t) => out.push(t));
  return out;
}

/** The dotted paths of the leaves, in the same order as {@link leaves}. */
export function paths(tree: unknown): string[] {
  const out: string[] = [];
  forEachLeaf(tree, (p) => out.push(p));
  return out;
}

/** [path, leaf] pairs. */
export function entries(tree: unknown): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  forEachLeaf(tree, (p, t) => out.push([p, t]));
  return out;
}

function expandBraces(seg: string): string[] {
  const m = seg.match(/\{([^{}]*)\}/);
  if (!m) return [seg];
  const pre = seg.slice(0, m.index), post = seg.slice(m.index! + m[0].length);
  return m[1].split(",").flatMap((alt) => expandBraces(pre + alt + post));
}

function segmentRegex(seg: string): RegExp {
  const alts = expandBraces(seg).map((a) =>
    a.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^.]*")
  );
  return new RegExp(`^(?:${alts.join("|")})$`);
}

/**
 * Compiles a glob into a path predicate. Segments are split on dots outside
 * braces, so `layers.{0,1}.attn.*` and `**.{q,k,v}.weight` work.
 */
export function glob(pattern: string): (path: string) => boolean {
  if (typeof pattern !== "string" || pattern === "") {
    throw new Error(`glob: pattern must be a non-empty string, got ${JSON.stringify(pattern)}`);
  }
  const segs: string[] = [];
  let depth = 0, cur = "";
  for (const ch of pattern) {
    if (ch === "{") depth++;
    if (ch === "}") depth--;
    if (ch === "." && depth === 0) {
      segs.push(cur);
      cur = "";
    } else cur += ch;
  }
  segs.push(cur);
  if (depth !== 0) throw new Error(`glob: unbalanced braces in pattern "${pattern}"`);
  const matchers = segs.map((s) => (s === "**" ? null : segmentRegex(s)));
  const match = (parts: string[], pi: number, mi: number): boolean => {
    if (mi === matchers.length) return pi === parts.length;
    const m = matchers[mi];
    if (m === null) {
      for (let k = pi; k <= parts.length; k++) if (match(parts, k, mi + 1)) return true;
      return false;
    }
    return pi < parts.length && m.test(parts[pi]) && match(parts, pi + 1, mi + 1);
  };
  return (path: string) => match(path === "" ? [] : path.split("."), 0, 0);
}

function predicate(where: Where): (path: string, leaf: Tensor) => boolean {
  if (typeof where === "string") {
    const g = glob(where);
    return (p) => g(p);
  }
  if (typeof where === "function") return where;
  throw new Error(`tree: expected a glob pattern or a predicate, got ${typeof where}`);
}

function describe(where: Where): string {
  return typeof where === "string" ? `pattern "${where}"` : `predicate ${where.name || "(anonymous)"}`;
}

function sample(tree: unknown): string {
  const ps = paths(tree);
  return ps.length
    ? ` (paths look like: ${ps.slice(0, 4).join(", ")}${ps.length > 4 ? ", …" : ""})`
    : " (the tree has no leaves)";
}

/** The [path, leaf] pairs matching a glob or predicate. Throws if nothing matches. */
export function select(tree: unknown, where: Where): [string, Tensor][] {
  const pred = predicate(where);
  const out = entries(tree).filter(([p, t]) => pred(p, t));
  if (!out.length) throw new Error(`tree.select: ${describe(where)} matches no leaf${sample(tree)}`);
  return out;
}

function segmentsOf(path: string): (string | number)[] {
  if (typeof path !== "string") throw new Error(`tree: a path must be a string, got ${typeof path}`);
  if (path === "") return [];
  const segs = path.split(".");
  segs.forEach((s, i) => checkKey(s, segs.slice(0, i).join(".")));
  return segs.map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** The subtree or leaf at a dotted path. Throws naming the path if absent. */
export function at(tree: unknown, path: string): Tree {
  let cur: unknown = tree;
  for (const seg of segmentsOf(path)) {
    if (cur === null || typeof cur !== "object" || isTensor(cur) || !Object.hasOwn(cur, String(seg))) {
      throw new Error(`tree.at: no node at path "${path}"${sample(tree)}`);
    }
    cur = (cur as Record<string, unknown>)[seg as string];
  }
  return cur as Tree;
}

/** A new tree with the node at `path` replaced by `value` (the path must exist). Shares untouched subtrees. */
export function set<T extends Tree>(tree: T, path: string, value: Tree): T {
  at(tree, path); // validates
  const go = (node: unknown, segs: (string | number)[]): unknown => {
    if (!segs.length) return value;
    const [head, ...rest] = segs;
    if (Array.isArray(node)) {
      const copy = node.slice();
      copy[head as number] = go(node[head as number], rest);
      return copy;
    }
    const obj = node as Record<string, unknown>;
    return { ...obj, [head]: go(obj[head as string], rest) };
  };
  return go(tree, segmentsOf(path)) as T;
}

/**
 * Splits a tree in two of the same structure: leaves matching `where` go to
 * the first, the rest to the second; each has `null` where the other has a
 * leaf. A glob that matches nothing is an error.
 */
export function partition<T extends Tree>(tree: T, where: Where): [T, T] {
  const pred = predicate(where);
  let hits = 0;
  const a = map(tree, (t, p) => (pred(p, t) ? (hits++, t) : null));
  const b = map(tree, (t, p) => (pred(p, t) ? null : t));
  if (typeof where === "string" && hits === 0) {
    throw new Error(`tree.partition: ${describe(where)} matches no leaf${sample(tree)}`);
  }
  return [a, b];
}

/** Merges trees of one structure, taking at each position the first non-null leaf. */
export function combine<T extends Tree>(...trees: T[]): T {
  if (!trees.length) throw new Error("tree.combine: needs at least one tree");
  const go = (nodes: unknown[], path: string): unknown => {
    const present = nodes.filter((n) => n !== null && n !== undefined);
    if (!present.length) return null;
    const first = present[0];
    if (isTensor(first)) {
      if (present.length > 1) throw new Error(`tree.combine: two trees both have a leaf at "${path}"`);
      return first;
    }
    if (Array.isArray(first)) {
      const length = Math.max(...present.map((n) => (Array.isArray(n) ? n.length : 0)));
      return Array.from(
        { length },
        (_, i) => go(nodes.map((n) => (n as unknown[] | null)?.[i] ?? null), join(path, i)),
      );
    }
    if (isPlainObject(first)) {
      // The union of keys: a key present in only one tree is kept, not dropped.
      const keys = new Set(present.flatMap((n) => (isPlainObject(n) ? Object.keys(n) : [])));
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        checkKey(k, path);
        out[k] = go(
          nodes.map((n) => (isPlainObject(n) && Object.hasOwn(n, k) ? n[k] : null)),
          join(path, k),
        );
      }
      return out;
    }
    return first;
  };
  return go(trees, "") as T;
}

/** Applies `fn` leafwise to trees of identical structure (e.g. params and grads). */
export function zipMap<T extends Tree>(
  fn: (leaves: Tensor[], path: string) => Tensor | null,
  first: T,
  ...rest: Tree[]
): T {
  const others = rest.map((t) => new Map(entries(t)));
  return map(first, (leaf, path) => {
    const ls = [leaf];
    for (const o of others) {
      const l = o.get(path);
      if (!l) throw new Error(`tree.zipMap: trees differ in structure at "${path}"`);
      ls.push(l);
    }
    return fn(ls, path);
  });
}
