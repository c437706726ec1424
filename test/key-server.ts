/**
 * Test-only stand-in for EXTERNAL ASAP key repositories, installed as the test Worker's outbound
 * network (`outboundService` in vitest.config.ts). It runs in Node and answers real HTTP requests
 * for the hosts below; requests to any other host go out unchanged.
 *
 * Tests script it over HTTP: `PUT https://keys.test/__admin/reply?url=<key URL>` with a JSON
 * `KeyReply` body sets the answer for that URL (unset URLs answer 404), and
 * `GET https://keys.test/__admin/hits?url=<key URL>` returns `{ "hits": n }`. Key requests without
 * `Accept: application/x-pem-file` get 406.
 */

/** The scripted answer for one key URL. */
export interface KeyReply {
  status: number;
  contentType?: string;
  body?: string;
  cacheControl?: string;
  /** Delay before answering, e.g. to trigger the Worker's fetch timeout. */
  delayMs?: number;
}

/** Hosts served by `keyServer`: a primary and a mirror repository. */
export const KEY_SERVER_HOSTS: readonly string[] = ["keys.test", "keys-mirror.test"];

const replies = new Map<string, KeyReply>();
const hits = new Map<string, number>();

/** The outbound handler: key repositories for `KEY_SERVER_HOSTS`, pass-through otherwise. */
export async function keyServer(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (!KEY_SERVER_HOSTS.includes(url.hostname)) return fetch(request);
  if (url.pathname.startsWith("/__admin/")) {
    const target = url.searchParams.get("url") ?? "";
    if (url.pathname === "/__admin/reply" && request.method === "PUT") {
      replies.set(target, (await request.json()) as KeyReply);
      return new Response(null, { status: 204 });
    }
    if (url.pathname === "/__admin/hits") return Response.json({ hits: hits.get(target) ?? 0 });
    return new Response("unknown admin call", { status: 400 });
  }
  const key = `${url.origin}${url.pathname}`;
  hits.set(key, (hits.get(key) ?? 0) + 1);
  // Like a strict repository, insist on the ASAP media type.
  if (!request.headers.get("accept")?.includes("application/x-pem-file")) {
    return new Response("not acceptable", { status: 406 });
  }
  const reply = replies.get(key) ?? { status: 404, contentType: "text/plain", body: "no such key" };
  if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
  const headers: Record<string, string> = {};
  if (reply.contentType) headers["content-type"] = reply.contentType;
  if (reply.cacheControl) headers["cache-control"] = reply.cacheControl;
  return new Response(reply.body ?? null, { status: reply.status, headers });
}
