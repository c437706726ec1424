/**
 * Replay protection, sharded: a token id is spent in one of `ASAP_REPLAY_SHARDS` guard objects,
 * chosen by a hash of issuer and id, so one issuer's traffic is spread over every shard instead of
 * being serialised by one object. Ids are kept per issuer (the key holds the issuer), so the same
 * `jti` from two issuers is two ids.
 */
import { AuthError } from "../auth/failure";
import { withTimeout } from "../timeout";
import { objectId } from "./object-ids";

/** The shard (0 … shards − 1) that keeps `key`: 32-bit FNV-1a, stable across isolates and deploys. */
export function replayShard(key: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/** Name of replay shard `index` in the `CALLER_GUARD` namespace (callers use their own names). */
export const replayShardName = (index: number) => `replay-shard:${index}`;

/**
 * Spends `token` (of `issuer`) in its shard. Resolves when the id was unused and is now stored;
 * rejects with `AuthError` `replayed_token`, or `replay_guard_unavailable` when the shard does not
 * answer within `timeoutMs` (replay protection never fails open).
 */
export async function spendToken(
  namespace: Env["CALLER_GUARD"],
  shards: number,
  issuer: string,
  token: { jti: string; expiresAt: number },
  timeoutMs: number,
): Promise<void> {
  const key = `${issuer}\n${token.jti}`;
  const stub = namespace.get(objectId(namespace, replayShardName(replayShard(key, shards))));
  let replayed: boolean;
  try {
    ({ replayed } = await withTimeout(
      stub.admit({ token: { jti: key, expiresAt: token.expiresAt } }),
      timeoutMs,
      "replay shard",
    ));
  } catch {
    throw new AuthError("replay_guard_unavailable", "replay protection is unavailable; retry later");
  }
  if (replayed)
    throw new AuthError(
      "replayed_token",
      "token jti has been used before: mint one token per request (each with a fresh jti, e.g. `npx edge-inference token` per call)",
    );
}
