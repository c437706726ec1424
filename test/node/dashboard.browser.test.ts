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
/** In this project's port range for the browser test (loopback only). */
const PORT = Number(process.env.DASHBOARD_TEST_PORT ?? 8871);
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
    auth = await useTokenPool(bucket, await createTokenPool(80, "ES256"));

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
    for (const from of [0, 1000]) {
      const res = await call("/api/v1/models/bank/samples", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(bankSamples(from, 1000)),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      await res.arrayBuffer();
    }

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
    for (const route of ["statistics", "models", "online", "backlog"]) {
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

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "dashboard.png"), fullPage: true });
    expect(errors).toEqual([]);

    // Measurement, not asserted: each data route's latency with the session, 10 calls each.
    const headers = { cookie: `${cookie?.name}=${cookie?.value}` };
    const timings: Record<string, { min: number; median: number; max: number }> = {};
    for (const route of ["statistics", "models", "online", "backlog"]) {
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
});
