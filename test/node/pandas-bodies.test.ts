/**
 * test/pandas-bodies.ts builds the online service client's request bodies in TypeScript; this
 * compares them byte for byte with what real pandas + requests send (Debian's python3-pandas and
 * python3-requests under /usr/bin/python3), for a head of the bank CSV and for edge cases. One
 * Python process computes every case (pandas takes seconds to import). Skips with a message when
 * those Python packages or ../shared/datasets are absent.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { predictBody, sampleBody } from "../pandas-bodies";

const PYTHON = "/usr/bin/python3";
/**
 * For each job of the JSON on stdin, the body `requests.post(url, json=…)` sends: option 1
 * (`["sample", "<csv file>"]`) or option 2 (`["predict", "<typed line>"]`); a JSON list out.
 */
const SCRIPT = `
import json, sys, requests, pandas as pd
out = []
for kind, arg in json.load(sys.stdin):
    if kind == "sample":
        body = pd.read_csv(arg).to_dict()
    else:
        l = arg.split(',')
        body = [{'CompanyId': l[0], 'BankEntryText': l[1], 'BankEntryAmount': l[2]}]
    out.append(requests.Request('POST', 'http://x/', json=body).prepare().body.decode())
json.dump(out, sys.stdout)
`;

const bankFile = path.resolve("../shared/datasets/bank/bank_expenses_obfuscated.csv.gz");
const dir = mkdtempSync(path.join(tmpdir(), "pandas-bodies-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The first 300 rows of the bank CSV (within its first MiB compressed), or undefined. */
function bankHead(): string | undefined {
  if (!existsSync(bankFile)) return undefined;
  const text = gunzipSync(readFileSync(bankFile).subarray(0, 1 << 20), { finishFlush: 2 }).toString("utf8");
  return `${text.split("\n").slice(0, 301).join("\n")}\n`;
}

const CSVS = {
  bank: bankHead(),
  edge: ',a,b,c,d,e\n0,1.5,x,"q""uote",7,é😀\n1,2,-3,"tab\tcr",1e-7,\\\n2,3,0.25,z,2.0,x\n',
  signs: "x,y\n+5,-0\n 6 ,1e3\n",
};
const LINES = ["int:a055470, str:38248d2, > -100", "c,t,1", 'ä,"q",\\'];

/** Python's bodies by case name; undefined when Python lacks pandas or requests. */
let expected: Map<string, string> | undefined;

beforeAll(() => {
  const jobs: [string, string, string][] = [];
  for (const [name, csv] of Object.entries(CSVS)) {
    if (csv === undefined) continue;
    const file = path.join(dir, `${name}.csv`);
    writeFileSync(file, csv);
    jobs.push([name, "sample", file]);
  }
  for (const line of LINES) jobs.push([line, "predict", line]);
  let out: string;
  try {
    out = execFileSync(PYTHON, ["-c", SCRIPT], {
      encoding: "utf8",
      input: JSON.stringify(jobs.map(([, kind, arg]) => [kind, arg])),
      stdio: ["pipe", "pipe", "pipe"],
    });
  } catch (e) {
    if (/ModuleNotFoundError|ENOENT/.test(String((e as { stderr?: string }).stderr ?? e))) return;
    throw e;
  }
  const bodies = JSON.parse(out) as string[];
  expected = new Map(jobs.map(([name], i) => [name, bodies[i] as string]));
});

const SKIP =
  "skipped: /usr/bin/python3 lacks pandas or requests (apt-get install python3-pandas python3-requests)";

describe("the client's bodies built in TypeScript equal pandas + requests", () => {
  it("option 1 on the first 300 rows of the bank CSV", (ctx) => {
    if (!expected) return ctx.skip(SKIP);
    if (!CSVS.bank) return ctx.skip("skipped: ../shared/datasets/bank is absent");
    expect(sampleBody(CSVS.bank)).toBe(expected.get("bank"));
  });

  it("option 1 on edge cases: floats, mixed columns, non-ASCII, quotes, an empty header, -0", (ctx) => {
    if (!expected) return ctx.skip(SKIP);
    expect(sampleBody(CSVS.edge)).toBe(expected.get("edge"));
    expect(sampleBody(CSVS.signs)).toBe(expected.get("signs"));
  });

  it("option 2 on typed lines (values keep their spaces)", (ctx) => {
    if (!expected) return ctx.skip(SKIP);
    for (const line of LINES) expect(predictBody(line)).toBe(expected.get(line));
  });
});
