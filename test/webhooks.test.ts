/**
 * Webhook destinations (src/webhooks/destination.ts): the allow-list per issuer, https only and no
 * private / loopback / link-local hosts outside dev, and the refusals the API answers. Deliveries
 * themselves (signed POSTs to a real receiver, retries) are test/node/webhooks.test.ts.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ApiError } from "../src/errors";
import { deliveryId, insertDelivery, sweepDeliveries } from "../src/webhooks/deliveries";
import { checkCallbackUrl } from "../src/webhooks/destination";
import { postJson, problem } from "./helpers";

const SECRET = `whsec_${btoa(String.fromCharCode(...new Uint8Array(32).fill(7)))}`;
const config = (ENVIRONMENT: "dev" | "production", destinations: Record<string, string[]>) => ({
  ENVIRONMENT,
  WEBHOOK_DESTINATIONS: destinations,
  WEBHOOK_SECRETS: { acme: SECRET },
});

function refusal(url: string, c: ReturnType<typeof config>, issuer = "acme"): string | undefined {
  try {
    checkCallbackUrl(url, issuer, c);
    return undefined;
  } catch (error) {
    return error instanceof ApiError ? error.code : String(error);
  }
}

describe("callback_url destinations", () => {
  it("production: https under the issuer's prefixes only; private, loopback and link-local hosts refused", () => {
    const allowEverything = config("production", {
      acme: [
        "https://hooks.example.com/edge",
        "https://127.0.0.1",
        "https://10.0.0.8",
        "https://169.254.169.254",
        "https://[::1]",
        "https://[fe80::1]",
        "https://[::ffff:7f00:1]",
        "https://localhost",
        "https://db.internal",
        "https://192.168.1.20",
        "https://100.64.0.1",
        "http://hooks.example.com",
      ],
    });
    expect(refusal("https://hooks.example.com/edge/done", allowEverything)).toBeUndefined();
    expect(refusal("https://hooks.example.com/edge", allowEverything)).toBeUndefined();
    // Path prefixes stop at a segment boundary; other paths, origins and ports are not allowed.
    expect(refusal("https://hooks.example.com/edgeward", allowEverything)).toBe("callback_not_allowed");
    expect(refusal("https://hooks.example.com/other", allowEverything)).toBe("callback_not_allowed");
    expect(refusal("https://hooks.example.com:8443/edge/x", allowEverything)).toBe("callback_not_allowed");
    expect(refusal("https://evil.example.com/edge/x", allowEverything)).toBe("callback_not_allowed");
    for (const url of [
      "https://127.0.0.1/x",
      "https://10.0.0.8/x",
      "https://169.254.169.254/latest/meta-data",
      "https://[::1]/x",
      "https://[fe80::1]/x",
      "https://[::ffff:127.0.0.1]/x",
      "https://localhost/x",
      "https://db.internal/x",
      "https://192.168.1.20/x",
      "https://100.64.0.1/x",
      "http://hooks.example.com/x",
      "https://user:pw@hooks.example.com/edge/x",
      "ftp://hooks.example.com/edge",
      "not a url",
    ]) {
      expect(refusal(url, allowEverything), url).toBe("invalid_callback_url");
    }
  });

  it("dev allows http and loopback, still only under the allow-list; an issuer without a secret is refused", () => {
    const dev = config("dev", { default: ["http://127.0.0.1:9999/hooks"] });
    expect(refusal("http://127.0.0.1:9999/hooks/a", dev)).toBeUndefined();
    expect(refusal("http://127.0.0.1:9998/hooks/a", dev)).toBe("callback_not_allowed");
    expect(refusal("http://127.0.0.1:9999/hooks/a", dev, "no-secret")).toBe("callback_not_allowed");
  });

  it("the API refuses a callback_url outside the allow-list before anything is queued", async () => {
    // wrangler.toml's dev WEBHOOK_DESTINATIONS is empty: no destination is allowed.
    const refused = await postJson("/api/v1/predictions", {
      text: "hello",
      callback_url: "https://hooks.example.com/x",
    });
    expect(refused.status).toBe(403);
    expect((await problem(refused)).code).toBe("callback_not_allowed");
    const bad = await postJson("/api/v1/predictions", { text: "hello", callback_url: "gopher://x" });
    expect((await problem(bad)).code).toBe("invalid_callback_url");
    const job = await postJson("/api/v1/models", {
      id: "webhook-refused",
      task: "binary",
      dataset: { rows: [{ text: "a", label: "x" }] },
      text_field: "text",
      label_field: "label",
      callback_url: "https://hooks.example.com/x",
    });
    expect((await problem(job)).code).toBe("callback_not_allowed");
  });

  it("the sweep queues a delivery whose subject finished without a message, and no other", async () => {
    const now = Date.now();
    const finished = crypto.randomUUID();
    const running = crypto.randomUUID();
    for (const [id, status] of [
      [finished, "failed"],
      [running, "running"],
    ] as const) {
      await env.DB.prepare(
        "INSERT INTO predictions (id, model_id, model_version, status, input_key, created_at) VALUES (?, 'spam', '3', ?, 'k', ?)",
      )
        .bind(id, status, now)
        .run();
      await insertDelivery(
        env.DB,
        "prediction",
        id,
        "acme",
        new URL("https://hooks.example.com/x"),
        now,
      ).run();
    }
    const status = async (id: string) =>
      (
        await env.DB.prepare("SELECT status FROM webhook_deliveries WHERE id = ?")
          .bind(deliveryId(id))
          .first<{
            status: string;
          }>()
      )?.status;
    expect(await status(finished)).toBe("waiting");
    expect((await sweepDeliveries(env, now)).requeued).toBeGreaterThanOrEqual(1);
    expect(await status(finished)).toBe("pending");
    expect(await status(running)).toBe("waiting");
  });
});
