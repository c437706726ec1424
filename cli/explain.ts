/**
 * `predict --explain`: the explanation of a text (docs/explanations.md) as a highlighted text.
 * Each UTF-16 unit of the text gets the sum of the shown n-grams' contributions whose spans cover
 * it; runs of one sign are marked: on a terminal with ANSI colours (red background: pushes the
 * label up, green: pushes it down; bold for the stronger half), otherwise (pipes, files,
 * `NO_COLOR`) with plain markers `[+…+]` and `[-…-]`.
 */

/** One shown n-gram of an explanation (the API's `NgramContribution`). */
export interface ShownNgram {
  ngram: string;
  kind: "word" | "char";
  contribution: number;
  /** `[start, end)` UTF-16 offsets. */
  spans: number[][];
}

/** One label of an explanation (the API's `TextExplanation.labels[i]`). */
export interface ExplainedLabel {
  label: string;
  logit: number;
  bias?: number;
  other?: number;
  top: ShownNgram[];
}

/** The API's `TextExplanation`. */
export interface Explanation {
  method: string;
  approximate: boolean;
  labels: ExplainedLabel[];
}

/** Whether stdout gets colours: a terminal, and no `NO_COLOR` (https://no-color.org). */
export function useColour(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
}

/** `text` with the spans of `top` marked by the sign of what covers each character. */
export function highlight(text: string, top: readonly ShownNgram[], colour: boolean): string {
  const weight = new Float64Array(text.length);
  for (const g of top) {
    for (const [s = 0, e = 0] of g.spans) {
      for (let i = Math.max(0, s); i < Math.min(text.length, e); i++)
        weight[i] = (weight[i] as number) + g.contribution;
    }
  }
  let max = 0;
  for (const w of weight) max = Math.max(max, Math.abs(w));
  const sign = (i: number) => Math.sign(weight[i] as number);
  let out = "";
  let i = 0;
  while (i < text.length) {
    const s = sign(i);
    let j = i + 1;
    while (j < text.length && sign(j) === s) j++;
    // Never cut a surrogate pair.
    if (j < text.length && /[\uDC00-\uDFFF]/.test(text[j] as string)) {
      j++;
      while (j < text.length && sign(j) === s) j++;
    }
    const run = text.slice(i, j);
    if (s === 0) out += run;
    else if (!colour) out += s > 0 ? `[+${run}+]` : `[-${run}-]`;
    else {
      let peak = 0;
      for (let k = i; k < j; k++) peak = Math.max(peak, Math.abs(weight[k] as number));
      const strong = peak >= max / 2;
      out += `\x1b[${strong ? "1;" : ""}${s > 0 ? "41" : "42"};97m${run}\x1b[0m`;
    }
    i = j;
  }
  return out;
}

/** Human lines of one text's explanation, for `labels` (e.g. the flagged ones or the best one). */
export function formatExplanation(
  text: string,
  explanation: Explanation,
  labels: readonly string[],
  colour: boolean,
  indent = "  ",
): string[] {
  const lines = [
    `${indent}explanation (${explanation.method}${explanation.approximate ? ", approximate" : ", exact"}):`,
  ];
  for (const l of explanation.labels.filter((x) => labels.includes(x.label))) {
    const sum =
      l.bias !== undefined
        ? ` = bias ${l.bias.toFixed(3)} + shown ${l.top.reduce((s, c) => s + c.contribution, 0).toFixed(3)} + other ${(l.other ?? 0).toFixed(3)}`
        : "";
    lines.push(`${indent}${l.label}: logit ${l.logit.toFixed(3)}${sum}`);
    lines.push(`${indent}  ${highlight(text, l.top, colour)}`);
    for (const c of l.top) {
      const shown = c.kind === "char" ? JSON.stringify(c.ngram) : c.ngram;
      lines.push(
        `${indent}  ${c.contribution >= 0 ? "+" : "−"}${Math.abs(c.contribution).toFixed(3)}  ${c.kind} ${shown}`,
      );
    }
  }
  return lines;
}
