/** Keys that are never tree nodes nor path segments (`__proto__`, `constructor`, `prototype`). @module */
export const PROTO_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);
