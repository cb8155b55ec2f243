/**
 * Every relative link in the repository's Markdown resolves to a file inside
 * the repository (the docs stand on their own: no link into ../shared or any
 * other checkout). Web links (http, https, mailto) and in-page anchors are
 * not followed. Exits 1, listing the broken links, when any does not.
 *
 *   deno run --allow-read scripts/links.ts
 * @module
 */
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const SKIP_DIRS = new Set([".git", "node_modules", ".ci", "out", "dist"]);

function* markdownFiles(dir: string): Generator<string> {
  for (const e of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory && !SKIP_DIRS.has(e.name)) yield* markdownFiles(join(dir, e.name));
    else if (e.isFile && e.name.endsWith(".md")) yield join(dir, e.name);
  }
}

/** The relative link targets of a Markdown text: `[text](target)` and `![alt](target)`, code spans skipped. */
export function linkTargets(text: string): string[] {
  const prose = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  return [...prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1])
    .filter((t) => !/^(https?:|mailto:|#)/.test(t));
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const broken: string[] = [];
  let checked = 0;
  for (const file of markdownFiles(ROOT)) {
    for (const target of linkTargets(Deno.readTextFileSync(file))) {
      checked++;
      const path = resolve(dirname(file), decodeURIComponent(target.split("#")[0]));
      const inside = !relative(ROOT, path).startsWith("..");
      if (!inside || !exists(path)) {
        broken.push(`${relative(ROOT, file)}: ${target} ${inside ? "does not exist" : "is outside the repository"}`);
      }
    }
  }
  console.log(`links: ${checked} relative links checked, ${broken.length} broken`);
  if (broken.length) {
    for (const b of broken) console.error(`  ${b}`);
    Deno.exit(1);
  }
}
