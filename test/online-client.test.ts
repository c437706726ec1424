/**
 * The online-learning service's own Python client (MarosJev/online-learning-api,
 * `client/client.py`) against the compatibility routes: its two options replayed with bodies built
 * exactly as pandas and `requests` build them (test/pandas-bodies.ts), answers read as the client
 * reads them (option 1: `response.json()['message']`; option 2: `str(response.json())`).
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, postJson, problem } from "./helpers";
import { predictBody, sampleBody } from "./pandas-bodies";

/** `requests.post(url, json=…)`: the body as json.dumps wrote it, `Content-Type: application/json`. */
const post = (path: string, body: string) =>
  api(path, { method: "POST", headers: { "content-type": "application/json" }, body });

async function bankHead(rows: number): Promise<string | undefined> {
  const res = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(
    `http://fixtures/dataset-head/bank/bank_expenses_obfuscated.csv.gz?rows=${rows}`,
  );
  return res.ok ? res.text() : undefined;
}

describe("the online service's client, unchanged (needs ../shared/datasets)", () => {
  it("GET /getStatus answers {message: 'Success!'} without a token", async () => {
    const res = await api("/getStatus", {}, { auth: false });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ message: "Success!" });
  });

  it("option 2 before any sample, option 1 with pd.read_csv(path).to_dict(), then option 2", async (ctx) => {
    const csv = await bankHead(120);
    if (!csv) return ctx.skip("skipped: ../shared/datasets/bank is absent");
    const [header, first] = csv.split("\n");
    expect(header).toBe(
      ",CompanyId,BankEntryDate,BankEntryText,BankEntryAmount,AccountName,AccountNumber,AccountTypeName",
    );
    const cells = (first as string).split(",");
    const typed = `${cells[1]}, ${cells[3]}, ${cells[4]}`;

    // Option 2 before the model has learned anything: a `message`, as the original answers.
    const early = await post("/predict", predictBody(typed));
    expect(early.status).toBe(404);
    expect((await early.json()) as { message: string }).toMatchObject({
      message: expect.stringContaining("has not learned any sample yet"),
    });

    // Option 1: the column-oriented frame, numbers as numbers, with the "Unnamed: 0" index column.
    const body = sampleBody(csv);
    expect(body.startsWith('{"Unnamed: 0": {"0": 0, "1": 1,')).toBe(true);
    expect(body).toContain('"AccountNumber": {"0": 9900, "1": 3115,');
    const sample = await post("/sample", body);
    expect(sample.status).toBe(200);
    const answer = (await sample.json()) as { message: string; accepted?: number };
    expect(answer.message).toBe("120 sample(s) accepted; the model has learned them");

    // Option 2: a list of one record, values as typed (with their spaces) → {"AccountNumber": "<str>"}.
    const res = await post("/predict", predictBody(typed));
    expect(res.status).toBe(200);
    const predicted = (await res.json()) as { AccountNumber: string };
    expect(typeof predicted.AccountNumber).toBe("string");
    // The same learner through the native route gives the same account.
    const native = await postJson("/api/v1/models/bank/predict?source=learner", {
      CompanyId: cells[1],
      BankEntryText: ` ${cells[3]}`,
      BankEntryAmount: ` ${cells[4]}`,
    });
    expect(await native.json()).toEqual([predicted.AccountNumber]);
    const accounts = new Set(
      csv
        .trim()
        .split("\n")
        .slice(1)
        .map((line) => line.split(",")[6]),
    );
    expect(accounts.has(predicted.AccountNumber)).toBe(true);
  });
});

describe("every body shape pandas.DataFrame.from_dict takes, on /sample and /predict", () => {
  const record = (i: number) => ({
    "": i,
    CompanyId: 1000 + (i % 2),
    BankEntryDate: "2016-03-01",
    BankEntryText: i % 2 ? "coffee shop espresso" : "office rent march",
    BankEntryAmount: i % 2 ? "> -1000" : "< 10000",
    AccountName: i % 2 ? "Food" : "Rent",
    AccountNumber: i % 2 ? 4010 : 7300,
    AccountTypeName: "Profit and Loss",
  });
  const columns = (records: ReturnType<typeof record>[], asLists: boolean) => {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(records[0] as object)) {
      const values = records.map((r) => r[name as keyof typeof r]);
      out[name] = asLists ? values : Object.fromEntries(values.map((v, i) => [String(i), v]));
    }
    return out;
  };

  it("records, column dicts, column lists and one record are learned alike; numeric ids are printed", async () => {
    const batches = [
      Array.from({ length: 10 }, (_, i) => record(i)),
      columns(
        Array.from({ length: 10 }, (_, i) => record(i + 10)),
        false,
      ),
      columns(
        Array.from({ length: 10 }, (_, i) => record(i + 20)),
        true,
      ),
      record(31),
    ];
    for (const batch of batches) {
      const res = await postJson("/sample", batch);
      expect(res.status, await res.clone().text()).toBe(200);
      expect(((await res.json()) as { message: string }).message).toMatch(/sample\(s\) accepted/);
    }
    const input = { CompanyId: 1001, BankEntryText: "coffee shop espresso", BankEntryAmount: "> -1000" };
    for (const body of [input, [input], columns([input as never], false), columns([input as never], true)]) {
      const res = await postJson("/predict", body);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ AccountNumber: "4010", score: expect.any(Number) });
    }
    const top = await postJson("/predict?n_top=2", [input]);
    const answer = (await top.json()) as { AccountNumber: string; predictions: { AccountNumber: string }[] };
    expect(answer.AccountNumber).toBe("4010");
    expect(answer.predictions.map((p) => p.AccountNumber)).toHaveLength(2);
    expect(answer.predictions[0]?.AccountNumber).toBe("4010");
  });

  it("refusals carry `message`: two records on /predict, unequal column lists, a missing field", async () => {
    const input = { CompanyId: "c", BankEntryText: "t", BankEntryAmount: "1" };
    const two = await postJson("/predict", [input, input]);
    expect(two.status).toBe(400);
    expect(await problem(two)).toMatchObject({
      code: "invalid_request",
      message: "/predict takes exactly one sample record; the body has 2",
    });
    const ragged = await postJson("/sample", { CompanyId: ["a", "b"], BankEntryText: ["x"] });
    expect((await problem(ragged)).message).toBe("column 'BankEntryText' has 1 values, another has 2");
    const missing = await postJson("/sample", { ...record(0), AccountNumber: null });
    const refused = await problem(missing);
    expect(refused.message).toMatch(/AccountNumber is required/);
  });
});
