/**
 * test/pandas-bodies.ts builds the online service client's request bodies in TypeScript; this
 * compares them byte for byte with what real pandas + requests send (Debian's python3-pandas and
 * python3-requests under /usr/bin/python3), for a head of the bank CSV and for edge cases.
 * Skips with a message when those Python packages or ../shared/datasets are absent.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { predictBody, sampleBody } from "../pandas-bodies";

const PYTHON = "/usr/bin/python3";
/** The body `requests.post(url, json=…)` sends for option 1 (`argv[1]`: CSV) or option 2 (`argv[2]`: line). */
const SCRIPT = `
import sys, requests, pandas as pd
if sys.argv[1] == "sample":
    body = pd.read_csv(sys.argv[2]).to_dict()
else:
    l = sys.argv[2].split(',')
    body = [{'CompanyId': l[0], 'BankEntryText': l[1], 'BankEntryAmount': l[2]}]
sys.stdout.write(requests.Request('POST', 'http://x/', json=body).prepare().body.decode())
`;

function python(...args: string[]): string | undefined {
  try {
    return execFileSync(PYTHON, ["-c", SCRIPT, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (e) {
    if (/ModuleNotFoundError|ENOENT/.test(String((e as { stderr?: string }).stderr ?? e))) return undefined;
    throw e;
  }
}

const available = python("predict", "a,b,c") !== undefined;
const bankFile = path.resolve("../shared/datasets/bank/bank_expenses_obfuscated.csv.gz");
const dir = mkdtempSync(path.join(tmpdir(), "pandas-bodies-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function compareSample(csv: string): void {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.csv`);
  writeFileSync(file, csv);
  expect(sampleBody(csv)).toBe(python("sample", file));
}

describe("the client's bodies built in TypeScript equal pandas + requests", () => {
  it("option 1 on the first 300 rows of the bank CSV", (ctx) => {
    if (!available)
      return ctx.skip(
        "skipped: /usr/bin/python3 lacks pandas or requests (apt-get install python3-pandas python3-requests)",
      );
    if (!existsSync(bankFile)) return ctx.skip("skipped: ../shared/datasets/bank is absent");
    // The whole file is 737k rows; 300 lines are within its first 64 KiB compressed.
    const text = gunzipSync(readFileSync(bankFile).subarray(0, 1 << 20), { finishFlush: 2 }).toString("utf8");
    const csv = `${text.split("\n").slice(0, 301).join("\n")}\n`;
    compareSample(csv);
  });

  it("option 1 on edge cases: floats, mixed columns, non-ASCII, quotes, an empty header, -0", (ctx) => {
    if (!available) return ctx.skip("skipped: /usr/bin/python3 lacks pandas or requests");
    compareSample(',a,b,c,d,e\n0,1.5,x,"q""uote",7,é😀\n1,2,-3,"tab\tcr",1e-7,\\\n2,3,0.25,z,2.0,x\n');
    compareSample("x,y\n+5,-0\n 6 ,1e3\n");
  });

  it("option 2 on typed lines (values keep their spaces)", (ctx) => {
    if (!available) return ctx.skip("skipped: /usr/bin/python3 lacks pandas or requests");
    for (const line of ["int:a055470, str:38248d2, > -100", "c,t,1", 'ä,"q",\\']) {
      expect(predictBody(line)).toBe(python("predict", line));
    }
  });
});
