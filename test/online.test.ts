/**
 * Online learning in workerd: the samples/predict/metrics routes with real auth, the real
 * `OnlineLearner` Durable Object (SQLite), snapshots exported with the real exporter, published
 * through the real registry (D1 + R2) and served by ORT on the edge path. Each case uses its own
 * online model (vitest.config.ts lists them in ONLINE_MODELS), so each has its own learner object.
 * ORT-using online cases live in this one file (each ORT file costs ~15 s of startup).
 */
import { abortAllDurableObjects, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { MetricsReport } from "../durable-objects/online-learner";
import { BANK_FEATURIZER } from "../src/contracts/manifest";
import { r2Keys } from "../src/contracts/r2-keys";
import { sha256Hex } from "../src/hash";
import { bankFeatures, bankText } from "../src/online/features";
import { OnlineSoftmax } from "../src/online/learner";
import { prequential } from "../src/online/prequential";
import type { BankSample } from "../src/online/sample";
import { classificationSummary } from "../src/training/metrics";
import { api, postJson, problem } from "./helpers";

interface IngestBody {
  accepted: number;
  samples_total: number;
  version: number;
  classes_seen: number;
  snapshot: { version: string; samples: number } | null;
}

const COMPANIES = ["int:a055470", "int:d113597", "int:7cb070e"];
/** Each word decides the account, per company. */
const WORDS = ["str:rent", "str:fuel", "str:coffee", "str:salary", "str:tax"];
const account = (company: number, word: number) => String(1000 + company * 100 + word * 10);

/** A deterministic synthetic sample: the account follows from company + first word. */
function sample(i: number): BankSample {
  const c = i % COMPANIES.length;
  const w = (i * 7 + Math.floor(i / 3)) % WORDS.length;
  return {
    CompanyId: COMPANIES[c] as string,
    BankEntryDate: "2016-03-01",
    BankEntryText: `${WORDS[w]} int:${((i * 2654435761) % 1_000_003).toString(16)}`,
    BankEntryAmount: i % 2 ? "> -1000" : "< 10000",
    AccountName: `str:${c}${w}`,
    AccountNumber: account(c, w),
    AccountTypeName: "Profit and Loss",
  };
}
const samples = (from: number, count: number) => Array.from({ length: count }, (_, i) => sample(from + i));

const learner = (model: string) => env.ONLINE_LEARNER.get(env.ONLINE_LEARNER.idFromName(model));

async function ingest(model: string, body: unknown): Promise<IngestBody> {
  const res = await postJson(`/api/v1/models/${model}/samples`, body);
  if (res.status !== 200) throw new Error(`samples ${model}: ${res.status} ${await res.text()}`);
  return (await res.json()) as IngestBody;
}

async function metrics(model: string): Promise<MetricsReport> {
  const res = await api(`/api/v1/models/${model}/metrics`);
  expect(res.status).toBe(200);
  return (await res.json()) as MetricsReport;
}

function toCsv(rows: BankSample[]): string {
  const header =
    ",CompanyId,BankEntryDate,BankEntryText,BankEntryAmount,AccountName,AccountNumber,AccountTypeName";
  const lines = rows.map((r, i) =>
    [
      i,
      r.CompanyId,
      r.BankEntryDate,
      r.BankEntryText,
      r.BankEntryAmount,
      r.AccountName,
      r.AccountNumber,
      r.AccountTypeName,
    ].join(","),
  );
  return `${[header, ...lines].join("\n")}\n`;
}

describe("metrics maths", () => {
  it("precision/recall macro and weighted equal scikit-learn on a hand-computed case", () => {
    // truth a a a b b c, predicted a a b b c c (labels a=0, b=1, c=2):
    // a: P 2/2, R 2/3, support 3;  b: P 1/2, R 1/2, support 2;  c: P 1/2, R 1/1, support 1.
    const s = classificationSummary([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 2]);
    expect(s.accuracy).toBeCloseTo(4 / 6, 12);
    expect(s.precision_macro).toBeCloseTo((1 + 0.5 + 0.5) / 3, 12);
    expect(s.recall_macro).toBeCloseTo((2 / 3 + 0.5 + 1) / 3, 12);
    expect(s.precision_weighted).toBeCloseTo((1 * 3 + 0.5 * 2 + 0.5 * 1) / 6, 12);
    expect(s.recall_weighted).toBeCloseTo(4 / 6, 12);
    // A label only ever predicted (9) counts in macro with P = R = 0 and weighs nothing in weighted.
    const t = classificationSummary([9, 0], [0, 0]);
    expect(t.precision_macro).toBeCloseTo(0.5, 12);
    expect(t.recall_macro).toBeCloseTo(0.25, 12);
    expect(t.precision_weighted).toBeCloseTo(1, 12);
  });

  it("the metrics endpoint covers exactly the last 1,000 predictions made before learning", async () => {
    const model = "bank-window";
    for (let i = 0; i < 1200; i += 400) await ingest(model, samples(i, 400));
    const report = await metrics(model);
    expect(report.samples_total).toBe(1200);
    expect(report.window.rows).toBe(1000);
    const stored = await runInDurableObject(learner(model), (_, state) =>
      state.storage.sql
        .exec<{ predicted: string | null; account_number: string }>(
          "SELECT predicted, account_number FROM samples WHERE seq > 200 ORDER BY seq",
        )
        .toArray(),
    );
    expect(stored).toHaveLength(1000);
    const ids = new Map<string | null, number>();
    const id = (label: string | null): number => {
      if (!ids.has(label)) ids.set(label, ids.size);
      return ids.get(label) as number;
    };
    const expected = classificationSummary(
      stored.map((r) => id(r.predicted)),
      stored.map((r) => id(r.account_number)),
    );
    expect(report.window).toEqual(expected);
    expect(report.window.accuracy).toBeGreaterThan(0.9); // the synthetic rule is learnable
    expect(report.series.map((p) => p.samples)).toEqual([1000]);
    expect(report.classes_seen).toBe(15);
  });
});

describe("POST /api/v1/models/:id/samples validation (all or nothing)", () => {
  it("bad rows are reported by row number and nothing is applied", async () => {
    const model = "bank-rows";
    const rows: unknown[] = samples(0, 5);
    rows[1] = { ...sample(1), AccountNumber: undefined };
    rows[3] = { ...sample(3), CompanyId: 42, BankEntryDate: "yesterday" };
    const res = await postJson(`/api/v1/models/${model}/samples`, rows);
    expect(res.status).toBe(400);
    const body = await problem(res);
    expect(body.code).toBe("invalid_request");
    expect(body.errors).toEqual([
      { row: 2, path: "AccountNumber", message: "AccountNumber is required" },
      { row: 4, path: "CompanyId", message: "CompanyId must be a string" },
      { row: 4, path: "BankEntryDate", message: "BankEntryDate must start with a YYYY-MM-DD date" },
    ]);
    expect((await metrics(model)).samples_total).toBe(0);
    // The same rows, fixed, are accepted as a whole.
    expect((await ingest(model, samples(0, 5))).samples_total).toBe(5);
  });

  it("text/csv bodies: header with the dataset's index column; a bad row refuses the request", async () => {
    const model = "bank-csv";
    const good = toCsv(samples(0, 10));
    const bad = good.replace(`,${sample(6).AccountNumber},`, ",,"); // row 7: blank AccountNumber
    const post = (body: string) =>
      api(`/api/v1/models/${model}/samples`, {
        method: "POST",
        headers: { "content-type": "text/csv" },
        body,
      });
    const refused = await post(bad);
    expect(refused.status).toBe(400);
    expect((await problem(refused)).errors).toEqual([
      { row: 7, path: "AccountNumber", message: "AccountNumber must not be blank" },
    ]);
    const ragged = await post(`${good}1,int:x,2016-01-01\n`);
    expect(ragged.status).toBe(400);
    expect((await problem(ragged)).code).toBe("invalid_request");
    const noColumn = await post("CompanyId,BankEntryText\nint:x,str:y\n");
    expect((await problem(noColumn)).detail).toMatch(/lacks column\(s\) BankEntryDate, BankEntryAmount/);
    expect((await metrics(model)).samples_total).toBe(0);
    const ok = await post(good);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ accepted: 10, samples_total: 10, version: 1, classes_seen: 10 });
  });

  it("limits: rows per request, body size, unknown online model, media type", async () => {
    const tooMany = await postJson("/api/v1/models/bank-rows/samples", samples(0, 1001));
    expect(tooMany.status).toBe(400);
    expect(await problem(tooMany)).toMatchObject({ code: "batch_too_large", limit: 1000 });
    const huge = [{ ...sample(0), BankEntryText: "x".repeat(1024 * 1024) }];
    const tooBig = await postJson("/api/v1/models/bank-rows/samples", huge);
    expect(tooBig.status).toBe(413);
    expect((await problem(tooBig)).code).toBe("payload_too_large");
    const unknown = await postJson("/api/v1/models/toxicity/samples", samples(0, 1));
    expect(unknown.status).toBe(404);
    expect((await problem(unknown)).code).toBe("model_not_found");
    const xml = await api("/api/v1/models/bank-rows/samples", {
      method: "POST",
      headers: { "content-type": "application/xml" },
      body: "<samples/>",
    });
    expect(xml.status).toBe(415);
    const notList = await postJson("/api/v1/models/bank-rows/samples", { CompanyId: "x" });
    expect((await problem(notList)).code).toBe("invalid_request");
  });

  it("an online model cannot be deleted through the registry (its learner would republish it)", async () => {
    const res = await api("/api/v1/models/bank-rows", { method: "DELETE" });
    expect(res.status).toBe(409);
    expect((await problem(res)).code).toBe("model_is_online");
  });

  it("a request that would grow the label set past ONLINE_MAX_LABELS is refused whole (422)", async () => {
    const model = "bank-labels";
    const distinct = (from: number, count: number) =>
      samples(from, count).map((s, i) => ({ ...s, AccountNumber: `A${from + i}` }));
    await ingest(model, distinct(0, 1000));
    await ingest(model, distinct(1000, 1000));
    const over = await postJson(`/api/v1/models/${model}/samples`, distinct(2000, 49));
    expect(over.status).toBe(422);
    expect(await problem(over)).toMatchObject({ code: "label_limit_reached", limit: 2048 });
    expect((await metrics(model)).samples_total).toBe(2000);
    const fits = await ingest(model, [...distinct(2000, 48), ...distinct(0, 5)]);
    expect(fits).toMatchObject({ samples_total: 2053, classes_seen: 2048 });
  });
});

describe("one learner per model serialises updates", () => {
  it("200 concurrent sample posts: exact sample count, distinct monotonic versions", async () => {
    const model = "bank-concurrent";
    const bodies = await Promise.all(Array.from({ length: 200 }, (_, i) => ingest(model, samples(i * 3, 3))));
    expect(bodies.map((b) => b.version).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    // Each request saw the count after its own samples: versions and totals rise together.
    for (const b of bodies) expect(b.samples_total).toBe(b.version * 3);
    const report = await metrics(model);
    expect(report).toMatchObject({ samples_total: 600, version: 200 });
    const rows = await runInDurableObject(learner(model), (_, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM samples").one(),
    );
    expect(rows.n).toBe(600);
  });
});

describe("state survives eviction", () => {
  it("a fresh instance rebuilds bit-identical weights from checkpoint + stored samples", async () => {
    const model = "bank-persist";
    await ingest(model, samples(0, 150));
    expect(await runDurableObjectAlarm(learner(model))).toBe(true); // snapshot + checkpoint at 150
    await ingest(model, samples(150, 100)); // replayed from the samples table on reload
    const probe = samples(1000, 5);
    const observe = () =>
      runInDurableObject(learner(model), async (instance) => {
        const inner = instance as unknown as { learner: OnlineSoftmax };
        return {
          marker: "marker" in instance,
          checkpoint: await sha256Hex(inner.learner.checkpoint()),
          learned: inner.learner.learned,
          predictions: probe.map((p) => instance.predict(p, 3)),
          metrics: instance.metrics(model),
        };
      });
    const before = await observe();
    await runInDurableObject(learner(model), (instance) => {
      Object.assign(instance, { marker: true });
    });
    expect((await observe()).marker).toBe(true);
    await abortAllDurableObjects();
    const after = await observe();
    expect(after.marker).toBe(false); // a new instance
    expect(after.learned).toBe(250);
    expect(after.checkpoint).toBe(before.checkpoint);
    expect(after.predictions).toEqual(before.predictions);
    expect(after.metrics).toEqual(before.metrics);
    expect(after.metrics.snapshot?.samples).toBe(150);
    // And it keeps learning from where it was.
    expect((await ingest(model, samples(250, 10))).samples_total).toBe(260);
  });

  it("checkpoint bytes restore an equal learner", () => {
    const a = new OnlineSoftmax(BANK_FEATURIZER);
    for (const s of samples(0, 300)) a.learn(bankFeatures(s), s.AccountNumber);
    const b = OnlineSoftmax.fromCheckpoint(a.checkpoint());
    expect(b.labels).toEqual(a.labels);
    expect(b.checkpoint()).toEqual(a.checkpoint());
    // Both keep learning identically, including new labels.
    for (const s of [...samples(300, 50), { ...sample(999), AccountNumber: "new" }]) {
      expect(b.step(bankFeatures(s), s.AccountNumber)).toBe(a.step(bankFeatures(s), s.AccountNumber));
    }
    expect(b.checkpoint()).toEqual(a.checkpoint());
  });
});

describe("snapshots serve the edge predict path", () => {
  it("export → publish → activate: edge predict agrees with the learner on fixed samples", async () => {
    const model = "bank-snapshot";
    const noSnapshot = await postJson(`/api/v1/models/${model}/predict`, sample(0));
    expect(noSnapshot.status).toBe(404);
    await ingest(model, samples(0, 600));
    expect(await runDurableObjectAlarm(learner(model))).toBe(true);
    const report = await metrics(model);
    expect(report.snapshot).toMatchObject({ version: "s0000000600", samples: 600 });
    const manifest = (await (await env.MODELS.get(r2Keys.manifest(model, "s0000000600")))?.json()) as {
      featurizer: unknown;
      labels: string[];
      quantization: string;
    };
    expect(manifest).toMatchObject({ featurizer: BANK_FEATURIZER, quantization: "int8" });
    expect(manifest.labels).toHaveLength(15);
    expect(await (await env.MODELS.get(r2Keys.active(model)))?.json()).toEqual({ version: "s0000000600" });

    for (let c = 0; c < COMPANIES.length; c++) {
      for (let w = 0; w < WORDS.length; w++) {
        const input = {
          CompanyId: COMPANIES[c] as string,
          BankEntryText: `${WORDS[w]} int:fresh${c}${w}`,
          BankEntryAmount: "> -1000",
        };
        const edge = await postJson(`/api/v1/models/${model}/predict?n_top=15`, input);
        expect(edge.status).toBe(200);
        expect(edge.headers.get("x-model-version")).toBe("s0000000600");
        const edgeTop = (await edge.json()) as { AccountNumber: string; score: number }[];
        const own = await learner(model).predict(input, 15);
        expect(edgeTop[0]?.AccountNumber).toBe(own.top[0]?.AccountNumber);
        expect(edgeTop[0]?.AccountNumber).toBe(account(c, w));
        expect(edgeTop).toHaveLength(15);
        const ownScore = new Map(own.top.map((t) => [t.AccountNumber, t.score]));
        for (const t of edgeTop) expect(t.score).toBeCloseTo(ownScore.get(t.AccountNumber) as number, 1); // int8 vs float
        // The seed's shape without n_top, and the generic predict route on the same snapshot.
        const plain = await postJson(`/api/v1/models/${model}/predict`, {
          ...input,
          AccountNumber: "ignored",
        });
        expect(await plain.json()).toEqual([account(c, w)]);
        const generic = await postJson("/api/v1/predict", { model, text: bankText(input), n_top: 1 });
        expect(
          ((await generic.json()) as { sentiment: { sentiment_type: string }[] }).sentiment[0],
        ).toMatchObject({
          sentiment_type: account(c, w),
        });
      }
    }
    // ?source=learner asks the learner itself, which already has samples newer than the snapshot.
    await ingest(model, samples(600, 5));
    const fresh = await postJson(`/api/v1/models/${model}/predict?source=learner`, sample(3));
    expect(fresh.headers.get("x-model-version")).toBe("learner-2");
    expect(await fresh.json()).toEqual([sample(3).AccountNumber]);
    const bad = await postJson(`/api/v1/models/${model}/predict?n_top=0&source=cache`, { CompanyId: "x" });
    expect(bad.status).toBe(400);
  });
});

describe("the bank dataset through the API (needs ../shared/datasets)", () => {
  it("first 10,000 rows as CSV in batches of 100: the API's metrics equal the offline evaluator's and beat the seed", async (ctx) => {
    const res = await (env as unknown as { FIXTURES: Fetcher }).FIXTURES.fetch(
      "http://fixtures/raw-datasets/bank/bank_expenses_obfuscated.csv.gz",
    );
    if (res.status === 404) {
      ctx.skip("skipped: ../shared/datasets/bank is absent");
      return;
    }
    const text = await new Response(res.body?.pipeThrough(new DecompressionStream("gzip"))).text();
    const lines = text.split("\n");
    const header = lines[0] as string;
    const data = lines.slice(1, 10_001);
    const model = "bank-data";
    for (let i = 0; i < data.length; i += 100) {
      const body = `${[header, ...data.slice(i, i + 100)].join("\n")}\n`;
      const r = await api(`/api/v1/models/${model}/samples`, {
        method: "POST",
        headers: { "content-type": "text/csv" },
        body,
      });
      expect(r.status).toBe(200);
    }
    const report = await metrics(model);
    expect(report.samples_total).toBe(10_000);
    expect(report.window.accuracy).toBeGreaterThan(0.944); // the seed's last-1,000 accuracy at 10,000 rows
    // The same learner code offline, in the API's order (each sample predicted, then learned).
    const columns = header.split(",");
    const rows = data.map((line) => {
      const cells = line.split(",");
      const get = (name: string) => cells[columns.indexOf(name)] as string;
      return {
        CompanyId: get("CompanyId"),
        BankEntryText: get("BankEntryText"),
        BankEntryAmount: get("BankEntryAmount"),
        AccountNumber: get("AccountNumber"),
      };
    });
    const offline = prequential(rows, { batchSize: 1, checkpoints: [10_000], window: 1000 }).points[0];
    for (const [key, value] of Object.entries(offline?.last ?? {})) {
      expect(report.window[key as keyof MetricsReport["window"]]).toBeCloseTo(value, 12);
    }
  });
});

describe("online models through the API: create with its own field names, reset, delete", () => {
  /** `sample(i)` under the field names the created model declares. */
  const renamed = (i: number) => {
    const s = sample(i);
    return {
      Company: s.CompanyId,
      Date: s.BankEntryDate,
      Description: s.BankEntryText,
      Amount: s.BankEntryAmount,
      Account: s.AccountNumber,
    };
  };
  const create = (body: Record<string, unknown>) => postJson("/api/v1/models", { task: "online", ...body });

  it("creates a model, learns and predicts in the caller's field names, counts prequential accuracy", async () => {
    const spec = {
      id: "acme-ledger",
      label_field: "Account",
      feature_fields: { company: "Company", date: "Date", text: "Description", amount: "Amount" },
    };
    const created = await create(spec);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({
      id: "acme-ledger",
      task: "online",
      fields: { CompanyId: "Company", BankEntryText: "Description", AccountNumber: "Account" },
    });
    expect((await problem(await create(spec))).code).toBe("model_exists");
    expect((await problem(await create({ id: "toxicity" }))).code).toBe("model_exists");
    expect((await problem(await create({ id: "bank" }))).code).toBe("model_exists");

    // One object, then an array; a bad row is refused naming the caller's field.
    expect((await ingest("acme-ledger", renamed(0))).samples_total).toBe(1);
    const { Description: _d, ...noText } = renamed(1);
    const refused = await problem(await postJson("/api/v1/models/acme-ledger/samples", [renamed(1), noText]));
    expect(refused.code).toBe("invalid_request");
    expect(refused.errors).toEqual([{ row: 2, path: "Description", message: "Description is required" }]);
    await ingest(
      "acme-ledger",
      Array.from({ length: 299 }, (_, i) => renamed(i + 1)),
    );

    const { Account, ...input } = renamed(7);
    const predicted = await postJson("/api/v1/models/acme-ledger/predict?source=learner", input);
    expect(await predicted.json()).toEqual([Account]);

    const report = await metrics("acme-ledger");
    expect(report.samples_total).toBe(300);
    // Fewer than 1,000 samples: the window holds every prediction, so the two must agree.
    expect(report.cumulative.samples).toBe(300);
    expect(report.cumulative.correct).toBe(Math.round((report.window.accuracy ?? 0) * report.window.rows));
    expect(report.cumulative.accuracy).toBeCloseTo(report.cumulative.correct / 300, 12);
    expect(report.cumulative.correct).toBeGreaterThan(200);

    // Reset: everything learned is forgotten, and the counters start again.
    const reset = await postJson("/api/v1/models/acme-ledger/reset", {});
    expect(reset.status).toBe(200);
    const after = await metrics("acme-ledger");
    expect(after).toMatchObject({
      samples_total: 0,
      classes_seen: 0,
      cumulative: { samples: 0, correct: 0, accuracy: null },
    });
    expect((await postJson("/api/v1/models/acme-ledger/predict?source=learner", input)).status).toBe(404);
    expect((await ingest("acme-ledger", renamed(0))).samples_total).toBe(1);

    // Delete: the model is gone, and a new one of the same id starts empty.
    const deleted = await api("/api/v1/models/acme-ledger", { method: "DELETE" });
    expect(deleted.status).toBe(200);
    expect((await postJson("/api/v1/models/acme-ledger/samples", renamed(0))).status).toBe(404);
    expect((await create({ id: "acme-ledger" })).status).toBe(201);
    expect((await metrics("acme-ledger")).samples_total).toBe(0);
  });

  it("in the user's own words end to end: CSV and JSON with their names, no date needed, 'no snapshot yet' with when, answers keyed by their label", async () => {
    expect(
      (
        await create({
          id: "own-words",
          label_field: "Account",
          feature_fields: { company: "Company", text: "Description", amount: "Amount" },
        })
      ).status,
    ).toBe(201);
    // CSV with only the fields the features and the label need (no date, no label name/type).
    const csv = [
      "Company,Description,Amount,Account",
      ...Array.from({ length: 40 }, (_, i) => {
        const s = sample(i);
        return `${s.CompanyId},"${s.BankEntryText.replaceAll('"', '""')}",${s.BankEntryAmount},${s.AccountNumber}`;
      }),
    ].join("\n");
    const posted = await api("/api/v1/models/own-words/samples", {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: csv,
    });
    expect(posted.status, await posted.clone().text()).toBe(200);
    expect(((await posted.json()) as IngestBody).samples_total).toBe(40);
    // A CSV missing a needed column is refused naming it in the user's words.
    const missing = await problem(
      await api("/api/v1/models/own-words/samples", {
        method: "POST",
        headers: { "content-type": "text/csv" },
        body: "Company,Description,Amount\nc,t,1\n",
      }),
    );
    expect(missing.detail).toBe("the CSV header lacks column(s) Account");
    // JSON without a date.
    const { CompanyId, BankEntryText, BankEntryAmount, AccountNumber } = sample(40);
    const json = {
      Company: CompanyId,
      Description: BankEntryText,
      Amount: BankEntryAmount,
      Account: AccountNumber,
    };
    expect((await ingest("own-words", [json])).samples_total).toBe(41);

    // Before the first snapshot: the model exists, and the answer says when its snapshot is due.
    const input = { Company: CompanyId, Description: BankEntryText, Amount: BankEntryAmount };
    const early = await postJson("/api/v1/models/own-words/predict", input);
    expect(early.status).toBe(404);
    const p = await problem(early);
    expect(p.detail).toMatch(
      /^online model 'own-words' exists but has no snapshot yet: it has learned 41 sample\(s\); the first snapshot is due at \d{4}-\d\d-\d\dT.*\?source=learner/,
    );
    expect(p.detail).not.toMatch(/no model named/);
    expect(Date.parse(p.snapshot_due_at as string)).toBeGreaterThan(Date.now() - 120_000);
    expect(early.headers.get("retry-after")).toMatch(/^\d+$/);

    // Answers with scores are keyed by the user's label field, from the learner and the snapshot.
    const fromLearner = (await (
      await postJson("/api/v1/models/own-words/predict?source=learner&n_top=2", input)
    ).json()) as Record<string, unknown>[];
    expect(Object.keys(fromLearner[0] ?? {})).toEqual(["Account", "score"]);
    expect(await runDurableObjectAlarm(learner("own-words"))).toBe(true);
    const fromSnapshot = await postJson("/api/v1/models/own-words/predict?n_top=2", input);
    expect(fromSnapshot.status).toBe(200);
    const top = (await fromSnapshot.json()) as Record<string, unknown>[];
    expect(top).toHaveLength(2);
    expect(Object.keys(top[0] ?? {})).toEqual(["Account", "score"]);
    expect(top[0]?.Account).toBe(fromLearner[0]?.Account);
  });

  it("a configured model (ONLINE_MODELS) can be reset but not deleted; unknown ids are 404", async () => {
    expect((await problem(await api("/api/v1/models/bank-labels", { method: "DELETE" }))).code).toBe(
      "model_is_online",
    );
    expect((await postJson("/api/v1/models/no-such-online/reset", {})).status).toBe(404);
    const refused = await problem(
      await create({ id: "x-1", label_field: "A", feature_fields: { text: "A" } }),
    );
    expect(refused.code).toBe("invalid_request");
  });
});
