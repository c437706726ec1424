/**
 * "Did you mean …?": the closest names to a mistyped one (unknown model ids, unknown routes), by
 * edit distance. Used only on error paths.
 */

/** Levenshtein distance of `a` and `b` (insert, delete, substitute; cost 1 each). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] as number;
}

/**
 * Up to `max` candidates close to `name`, best first: within an edit distance of a third of the
 * name's length (at least 2), or one being a prefix of the other.
 */
export function closest(name: string, candidates: Iterable<string>, max = 3): string[] {
  const limit = Math.max(2, Math.floor(name.length / 3));
  const scored: [string, number][] = [];
  for (const c of new Set(candidates)) {
    if (c === name) continue;
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    const prefix = c.startsWith(name) || name.startsWith(c);
    if (d <= limit || (prefix && Math.min(c.length, name.length) >= 3)) scored.push([c, d]);
  }
  return scored
    .sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0]))
    .slice(0, max)
    .map(([c]) => c);
}

/** " — did you mean 'a' or 'b'?" (empty without suggestions). */
export function didYouMean(suggestions: readonly string[], quote = "'"): string {
  if (suggestions.length === 0) return "";
  const q = suggestions.map((s) => `${quote}${s}${quote}`);
  const list = q.length === 1 ? q[0] : `${q.slice(0, -1).join(", ")} or ${q.at(-1)}`;
  return `; did you mean ${list}?`;
}
