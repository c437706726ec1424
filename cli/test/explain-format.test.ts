/** `predict --explain`'s highlighting (cli/explain.ts): markers, colours, overlaps, surrogate pairs. */
import { describe, expect, it } from "vitest";
import { highlight } from "../explain";

describe("highlight", () => {
  const text = "you are an idiot 😀 ok";
  const top = [
    { ngram: "idiot", kind: "word" as const, contribution: 2, spans: [[11, 16]] },
    { ngram: "are", kind: "word" as const, contribution: -0.5, spans: [[4, 7]] },
    // Overlaps "idiot" with a smaller negative part: the sum stays positive.
    { ngram: "ot ", kind: "char" as const, contribution: -1, spans: [[14, 16]] },
    // A span ending inside a surrogate pair never cuts it.
    { ngram: "😀", kind: "char" as const, contribution: 1, spans: [[17, 18]] },
  ];

  it("marks runs by the sign of what covers them, without colour", () => {
    expect(highlight(text, top, false)).toBe("you [-are-] an [+idiot+] [+😀+] ok");
  });

  it("colours on a terminal: red up, green down, bold for the stronger half", () => {
    const out = highlight(text, top, true);
    expect(out).toContain("\x1b[1;41;97midiot\x1b[0m");
    expect(out).toContain("\x1b[42;97mare\x1b[0m");
    expect(out.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "")).toBe(text);
  });
});
