/**
 * The dashboard in a real browser: the built Worker runs in workerd (Miniflare's API, loopback
 * only, as `npm run bench` runs it), gets real traffic (predict calls and online samples with real
 * signed tokens), and headless Chromium opens the page: refused without the login, then logged in
 * through the one-time URL; the charts must draw data points, the page must refresh, and the
 * console must stay free of errors (a CSP violation would be one). A screenshot goes to
 * test-artifacts/dashboard.png (git-ignored). Skipped with a message when Chromium is absent.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Miniflare } from "miniflare";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BenchAuth, createTokenPool, useTokenPool } from "../../bench/auth";
import { putShippedModels } from "../../scripts/local-r2";
import { build, root, startWorker } from "../../scripts/local-worker";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
/** Loopback port of the browser test's Worker: a free one unless DASHBOARD_TEST_PORT says. */
const PORT = Number(process.env.DASHBOARD_TEST_PORT ?? 0);
const ARTIFACTS = path.join(root, "test-artifacts");

if (!hasChromium) {
  console.warn(
    `SKIPPED: the dashboard browser test needs Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`,
  );
}

let mf: Miniflare | undefined;
let base = "";
let auth: BenchAuth;
let browser: Browser | undefined;
let userDataDir: string | undefined;

async function call(pathname: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", auth.nextHeaders().authorization ?? "");
  return fetch(`${base}${pathname}`, { ...init, headers });
}

/** Synthetic labelled bank samples (not dataset rows): the entry text names the account. */
function bankSamples(from: number, count: number): Record<string, string>[] {
  const kinds = [
    ["coffee bar", "6010", "Meals"],
    ["fuel station", "6020", "Travel"],
    ["office rent", "6030", "Rent"],
    ["salary payout", "6040", "Wages"],
  ] as const;
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    // Every 10th sample has another account, so accuracy is not trivially 1.
    const [text, , name] = kinds[i % kinds.length] ?? kinds[0];
    const account = (kinds[(i % 10 === 9 ? i + 1 : i) % kinds.length] ?? kinds[0])[1];
    return {
      CompanyId: "dash-co",
      BankEntryDate: `2026-01-${String((i % 28) + 1).padStart(2, "0")}`,
      BankEntryText: `${text} ${i % 97}`,
      BankEntryAmount: String(-((i % 50) + 1)),
      AccountName: name,
      AccountNumber: account,
      AccountTypeName: "expense",
    };
  });
}

/** Calls `pathname` with a JSON body. */
function postJsonCall(pathname: string, body: unknown): Promise<Response> {
  return call(pathname, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Polls `fn` every 250 ms until it returns a value, up to 30 s. */
async function poll<T>(fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 120; i++) {
    const value = await fn();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("timed out");
}

const ROLLOUT_MODEL = "dash-rollout";

/**
 * Model `dash-rollout`: versions 1 and 2 trained by jobs (version 1 active), a batch predicted by
 * each, and feedback on every item (so the per-model view has live quality for both versions).
 */
async function rolloutModel(): Promise<void> {
  const rows = Array.from({ length: 30 }, (_, i) => [
    { text: `quiet tea morning ${i}`, label: "calm" },
    { text: `cheap pills cash now ${i}`, label: "loud" },
  ]).flat();
  for (const version of ["1", "2"]) {
    const created = await postJsonCall("/api/v1/models", {
      id: ROLLOUT_MODEL,
      task: "binary",
      text_field: "text",
      label_field: "label",
      featurizer: { buckets: 1024 },
      dataset: { rows: version === "1" ? rows.slice(0, 20) : rows },
      version,
      activate: version === "1",
      force_update: version === "2",
    });
    expect(created.status, await created.clone().text()).toBe(202);
    const { job_id } = (await created.json()) as { job_id: string };
    await poll(async () => {
      const job = (await (await call(`/api/v1/jobs/${job_id}`)).json()) as {
        status: string;
        error: string | null;
      };
      if (job.status === "failed") throw new Error(`job failed: ${job.error}`);
      return job.status === "succeeded" ? job : undefined;
    });
  }
  const texts = ["quiet tea with friends", "cheap cash pills", "a calm quiet morning", "win cash now"];
  const truth = ["calm", "loud", "calm", "loud"];
  for (const version of ["1", "2"]) {
    const res = await postJsonCall("/api/v1/predict", { model: ROLLOUT_MODEL, version, texts });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const requestId = res.headers.get("x-request-id");
    await poll(async () => {
      const fb = await postJsonCall("/api/v1/feedback", {
        request_id: requestId,
        items: truth.map((label, index) => ({ index, labels: [label] })),
      });
      await fb.arrayBuffer();
      return fb.status === 201 ? true : undefined;
    });
  }
}

/** Console errors, page errors and failed requests seen by `page`. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
  page.on("requestfailed", (r) => errors.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  return errors;
}

describe.skipIf(!hasChromium)("dashboard in headless Chromium", () => {
  beforeAll(async () => {
    const bundle = await build(path.join(root, "dist", "browser-test"));
    ({ mf, url: base } = await startWorker(bundle, { LOG_LEVEL: "warn" }, { host: "127.0.0.1", port: PORT }));
    const bucket = await mf.getR2Bucket("MODELS");
    await putShippedModels(bucket);
    auth = await useTokenPool(bucket, await createTokenPool(300, "ES256"));

    // Traffic: predicts (one invalid, for the status mix) and two batches of online samples.
    for (let i = 0; i < 24; i++) {
      const body = i === 5 ? "{" : JSON.stringify({ text: `dashboard test message ${i}` });
      const res = await call("/api/v1/predict", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      expect(res.status).toBe(i === 5 ? 400 : 200);
      await res.arrayBuffer();
    }
    // Drift (docs/drift.md): 128 spam predictions in this hour, enough for a PSI point.
    for (let i = 0; i < 2; i++) {
      const res = await call("/api/v1/predict", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "spam",
          texts: Array.from({ length: 64 }, (_, k) => `free entry ${k} to win, reply now or see you at ${i}`),
        }),
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    // More APIs with traffic than the charts have colours: OIP (its 4xx too), the compatibility
    // routes, online predict, the registry, an unknown route; and a training job that fails.
    const json = { "content-type": "application/json" };
    const traffic: [string, RequestInit, number][] = [
      ["/v2", {}, 200],
      ["/v2/models/toxicity", {}, 200],
      ["/v2/models/toxicity/ready", {}, 200],
      [
        "/v2/models/toxicity/infer",
        {
          method: "POST",
          headers: json,
          body: JSON.stringify({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["hi"] }] }),
        },
        200,
      ],
      ["/v2/models/toxicity/infer", { method: "POST", headers: json, body: "{}" }, 400],
      ["/v2/repository/index", { method: "POST", headers: json, body: "{}" }, 200],
      ["/models", {}, 200],
      [
        "/prediction",
        { method: "POST", headers: json, body: JSON.stringify({ model_id: "spam", text: "hi" }) },
        200,
      ],
      ["/metrics", {}, 200],
      ["/api/v1/models", {}, 200],
      ["/api/v1/models/spam", {}, 200],
      ["/api/v1/statistics", {}, 200],
      [
        "/api/v1/predictions",
        { method: "POST", headers: json, body: JSON.stringify({ text: "later" }) },
        202,
      ],
      ["/api/v1/prediction", { method: "POST", headers: json, body: "{}" }, 404],
    ];
    for (const [pathname, init, status] of traffic) {
      const res = await call(pathname, init);
      expect(res.status, `${pathname}: ${await res.clone().text()}`).toBe(status);
      await res.arrayBuffer();
    }
    for (const from of [0, 1000]) {
      const res = await call("/api/v1/models/bank/samples", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(bankSamples(from, 1000)),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      await res.arrayBuffer();
    }
    const predicted = await call("/api/v1/models/bank/predict?source=learner", {
      method: "POST",
      headers: json,
      body: JSON.stringify(bankSamples(5, 1)[0]),
    });
    expect(predicted.status).toBe(200);
    await predicted.arrayBuffer();
    // A training job that fails (one class only): `failed` with error_code `invalid`.
    const created = await call("/api/v1/models", {
      method: "POST",
      headers: json,
      body: JSON.stringify({
        id: "dash-failing",
        task: "binary",
        text_field: "text",
        label_field: "label",
        dataset: { rows: Array.from({ length: 20 }, (_, i) => ({ text: `row ${i}`, label: "same" })) },
      }),
    });
    expect(created.status).toBe(202);
    const { job_id } = (await created.json()) as { job_id: string };
    for (let i = 0; i < 60; i++) {
      const job = (await (await call(`/api/v1/jobs/${job_id}`)).json()) as { status: string };
      if (job.status === "failed") break;
      await new Promise((r) => setTimeout(r, 250));
    }

    // The per-model view (issue 30): a model with two versions trained by jobs, traffic on both and feedback.
    await rolloutModel();

    userDataDir = await mkdtemp(path.join(tmpdir(), "dashboard-chromium-"));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      defaultViewport: { width: 1280, height: 900 },
    });
  });

  afterAll(async () => {
    await browser?.close();
    await mf?.dispose();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  });

  it("refuses the page and its data without the login", async () => {
    const page = await (browser as Browser).newPage();
    const res = await page.goto(`${base}/dashboard`);
    expect(res?.status()).toBe(401);
    expect(await page.$eval("h1", (h) => h.textContent)).toBe("Dashboard login required");
    expect(await page.$("#chart-per-second")).toBeNull();
    // The error page's CSP allows no fetches at all, so the data route is opened directly.
    for (const route of ["statistics", "models", "online", "backlog", "drift"]) {
      const data = await page.goto(`${base}/dashboard/api/${route}`);
      expect(data?.status(), route).toBe(401);
      expect(await data?.json(), route).toMatchObject({ code: "dashboard_login_required" });
    }
    await page.close();
  });

  it("logs in through the one-time URL and draws live charts without console errors", async () => {
    const login = await call("/api/v1/dashboard/login", { method: "POST" });
    expect(login.status).toBe(200);
    const { url } = (await login.json()) as { url: string };
    expect(url.startsWith(`${base}/dashboard/login?code=`)).toBe(true);

    const page = await (browser as Browser).newPage();
    const errors = watchErrors(page);
    const res = await page.goto(url);
    expect(res?.status()).toBe(200);
    expect(new URL(page.url()).pathname).toBe("/dashboard");
    const [cookie] = await page.cookies();
    expect(cookie).toMatchObject({
      name: "ei_dashboard",
      path: "/dashboard",
      httpOnly: true,
      sameSite: "Strict",
    });
    // The cookie is not readable from script.
    expect(await page.evaluate(() => document.cookie)).toBe("");

    // Two refreshes: the first load and one poll.
    await page.waitForFunction(() => Number(document.body.dataset.refreshed ?? 0) >= 2, { timeout: 20_000 });
    const points = (id: string) => page.$eval(`#${id}`, (el) => Number(el.getAttribute("data-points") ?? 0));
    expect(await points("chart-per-second")).toBeGreaterThan(0);
    expect(await points("chart-per-minute")).toBeGreaterThan(0);
    expect(await points("chart-status")).toBeGreaterThan(0);
    expect(await points("chart-latency")).toBeGreaterThan(0);
    expect(await points("chart-errors")).toBeGreaterThan(0);
    // Every API with traffic is listed (not only the 10 busiest), OIP and compatibility included.
    const apiNames = await page.$$eval("#table-apis tbody tr td:first-child", (tds) =>
      tds.map((t) => t.textContent),
    );
    expect(apiNames.length).toBeGreaterThan(10);
    for (const api of [
      "predict",
      "oip_infer",
      "oip_metadata",
      "compat_prediction",
      "compat_metrics",
      "online_predict",
      "online_samples",
      "unknown",
      "models_admin",
    ]) {
      expect(apiNames, api).toContain(api);
    }
    // The charts show the busiest APIs and sum the rest as "others (n)".
    const perMinuteNames = await page.$$eval("#chart-per-minute polyline", (l) =>
      l.map((p) => p.getAttribute("data-name") ?? ""),
    );
    expect(perMinuteNames.some((n) => /^others \(\d+\)$/.test(n))).toBe(true);
    // Status colours are used by nothing else: no API series shares a colour with a status class.
    const statusColors = await page.$$eval("#chart-status rect", (r) => [
      ...new Set(r.map((x) => x.getAttribute("fill"))),
    ]);
    const apiColors = await page.$$eval("#chart-per-minute polyline", (l) =>
      l.map((p) => p.getAttribute("stroke")),
    );
    expect(statusColors.length).toBeGreaterThanOrEqual(2);
    for (const c of apiColors) expect(statusColors).not.toContain(c);
    // Latency percentiles per API, from the statistics' histograms.
    const predictRow = await page.$$eval("#table-apis tbody tr", (trs) =>
      trs
        .map((t) => [...t.querySelectorAll("td")].map((td) => td.textContent ?? ""))
        .find((cells) => cells[0] === "predict"),
    );
    const [p50, p95, p99] = (predictRow ?? []).slice(8, 11).map((v) => Number(v.replaceAll(",", "")));
    expect(p50).toBeGreaterThan(0);
    expect(p95).toBeGreaterThanOrEqual(p50 as number);
    expect(p99).toBeGreaterThanOrEqual(p95 as number);
    expect(predictRow?.[4]).toMatch(/^\d+\.\d %$/); // error rate (the invalid body is a 4xx)
    // Each model's headline metric.
    const spamRow = await page.$$eval("#table-models tbody tr", (trs) =>
      trs
        .map((t) => [...t.querySelectorAll("td")].map((td) => td.textContent ?? ""))
        .find((cells) => cells[0] === "spam"),
    );
    expect(spamRow?.[5]).toMatch(/^(roc_auc|accuracy|f1_macro) 0\.\d{4}$/);
    // Failed work: the failed job is counted and listed with its reason.
    const failedRows = await page.$$eval("#table-failed tbody tr", (trs) =>
      trs.map((t) => t.textContent ?? ""),
    );
    expect(failedRows[0]).toMatch(/^training jobs1/);
    const failures = await page.$$eval("#table-failures tbody tr", (trs) =>
      trs.map((t) => t.textContent ?? ""),
    );
    expect(failures.some((f) => f.includes("dash-failing") && f.includes("invalid: "))).toBe(true);
    // Callers of this minute, across APIs. The traffic above may belong to the minute before: if the
    // table is empty, call again and wait for the page's next poll (up to three times).
    const callerRows = () => page.$$eval("#table-callers tbody tr", (trs) => trs.length);
    let callers = await callerRows();
    for (let attempt = 0; callers === 0 && attempt < 3; attempt++) {
      const seen = await page.evaluate(() => Number(document.body.dataset.refreshed ?? 0));
      const again = await call("/api/v1/predict", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: "dashboard test message, this minute" }),
      });
      expect(again.status).toBe(200);
      await again.arrayBuffer();
      await page.waitForFunction(
        (n) => Number(document.body.dataset.refreshed ?? 0) > n,
        { timeout: 20_000 },
        seen,
      );
      callers = await callerRows();
    }
    expect(callers).toBeGreaterThan(0);
    expect(await points("chart-online")).toBeGreaterThanOrEqual(2);
    expect(await points("chart-backlog")).toBeGreaterThanOrEqual(2);
    expect(
      await page.$$eval("#chart-per-second polyline", (l) => l.map((p) => p.getAttribute("data-name"))),
    ).toContain("predict");
    expect(await page.$$eval("#chart-status rect[data-label='4xx']", (r) => r.length)).toBeGreaterThan(0);
    const models = await page.$$eval("#table-models tbody tr td:first-child", (tds) =>
      tds.map((t) => t.textContent),
    );
    expect(models).toContain("toxicity (default)");
    const online = await page.$$eval("#table-online tbody tr", (trs) => trs.map((t) => t.textContent ?? ""));
    expect(online.some((row) => row.startsWith("bank2,000"))).toBe(true);
    expect(await page.$eval("#status", (s) => s.className)).toBe("status");
    // Drift: spam's PSI point of this hour, the dashed threshold, and spam's row.
    await page.waitForSelector("#chart-drift circle[data-model='spam']", { timeout: 20_000 });
    expect(
      Number(await page.$eval("#chart-drift circle[data-model='spam']", (c) => c.getAttribute("data-psi"))),
    ).toBeGreaterThan(0);
    expect(
      await page.$eval("#chart-drift line[data-threshold]", (l) => l.getAttribute("data-threshold")),
    ).toBe("0.2");
    const driftRow = await page.$$eval("#table-drift tbody tr", (trs) =>
      trs
        .map((t) => [...t.querySelectorAll("td")].map((td) => td.textContent ?? ""))
        .find((c) => c[0] === "spam"),
    );
    expect(driftRow?.[2]).toMatch(/^(ok|warning)$/);
    expect(Number(driftRow?.[3])).toBeGreaterThanOrEqual(128);
    // The reference's origin (spam's is its train split's profile; a model without one is pending).
    expect(driftRow?.[5]).toMatch(/^training \(\d+ inputs\)$/);

    // The per-model view: the model with two versions is picked; its versions, traffic share and
    // live quality are drawn; the shadow panel shows exactly when the deployment has the shadow route.
    await page.waitForSelector(`#model-view[data-model='${ROLLOUT_MODEL}']`, { timeout: 20_000 });
    const versionRows = await page.$$eval("#table-model-versions tbody tr", (trs) =>
      trs.map((t) => [...t.querySelectorAll("td")].map((td) => td.textContent ?? "")),
    );
    expect(versionRows.map((r) => r[0])).toEqual(["2", "1"]);
    expect(versionRows[1]?.slice(1, 5)).toEqual(["active", "100 %", "4", expect.stringMatching(/ %$/)]);
    expect(versionRows[0]?.[3]).toBe("4");
    expect(await points("chart-model-share")).toBe(1);
    expect(await points("chart-model-quality")).toBe(2);
    const qualityRows = await page.$$eval("#table-model-quality tbody tr", (trs) => trs.length);
    expect(qualityRows).toBe(4); // two labels × two versions
    const viewData = (await (
      await fetch(`${base}/dashboard/api/models/${ROLLOUT_MODEL}`, {
        headers: { cookie: `${cookie?.name}=${cookie?.value}` },
      })
    ).json()) as { shadow: unknown; traffic: unknown };
    expect(await page.$eval("#model-shadow", (d) => (d as HTMLElement).hidden)).toBe(
      viewData.shadow === null,
    );

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true });
    await (await page.$("#model-view"))?.screenshot({ path: path.join(ARTIFACTS, "dashboard-model.png") });
    await page.setViewport({ width: 1280, height: 900 });
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-top.png") });
    expect(errors).toEqual([]);

    // Measurement, not asserted: each data route's latency with the session, 10 calls each.
    const headers = { cookie: `${cookie?.name}=${cookie?.value}` };
    const timings: Record<string, { min: number; median: number; max: number }> = {};
    for (const route of ["statistics", "models", "online", "backlog", "drift", `models/${ROLLOUT_MODEL}`]) {
      const ms: number[] = [];
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        const res = await fetch(`${base}/dashboard/api/${route}`, { headers });
        await res.arrayBuffer();
        expect(res.status).toBe(200);
        ms.push(performance.now() - started);
      }
      ms.sort((a, b) => a - b);
      const round = (v: number | undefined) => Math.round((v ?? 0) * 10) / 10;
      timings[route] = {
        min: round(ms[0]),
        median: round((ms[4] ?? 0) / 2 + (ms[5] ?? 0) / 2),
        max: round(ms[9]),
      };
    }
    console.log(`dashboard data route latency (ms, 10 calls each): ${JSON.stringify(timings)}`);
    await page.close();
  });

  it("explains a typed text in the 'Explain a text' box (highlighted spans, no console errors)", async () => {
    const login = await call("/api/v1/dashboard/login", { method: "POST" });
    const { url } = (await login.json()) as { url: string };
    const page = await (browser as Browser).newPage();
    const errors = watchErrors(page);
    await page.goto(url);
    await page.waitForFunction(() => document.querySelectorAll("#xp-model option").length > 0, {
      timeout: 20_000,
    });
    const options = await page.$$eval("#xp-model option", (o) => o.map((x) => x.textContent));
    expect(options).toContain("toxicity-mlp");
    expect(options).not.toContain("digits");
    await page.select("#xp-model", "toxicity");
    await page.type("#xp-text", "You are an idiot");
    await page.click("#xp-go");
    await page.waitForFunction(
      () => Number(document.getElementById("xp-result")?.getAttribute("data-explained") ?? 0) >= 1,
      { timeout: 20_000 },
    );
    const pushedUp = await page.$$eval("#xp-result .xp-pos", (s) => s.map((x) => x.textContent ?? ""));
    expect(pushedUp.join(" ")).toContain("idiot");
    expect(await page.$eval("#xp-result", (r) => r.textContent)).toContain("exact-linear (exact)");
    await mkdir(ARTIFACTS, { recursive: true });
    await page.$eval("#explain", (e) => e.scrollIntoView());
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-explain.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });
});
