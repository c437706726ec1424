/**
 * The repository root: the nearest folder at or above `moduleUrl`'s folder holding a package.json.
 * Modules that also run bundled (cli/dist/ holds the CLI's chunks, one level deeper than their
 * sources in cli/ and scripts/) must find the root this way, never by a fixed `..`.
 */
import { existsSync } from "node:fs";
import path from "node:path";

export function repoRoot(moduleUrl: string): string {
  let dir = path.dirname(new URL(moduleUrl).pathname);
  while (!existsSync(path.join(dir, "package.json")) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
