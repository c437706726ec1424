/**
 * Quota leases (Doorman / Envoy's local + global limit, in small): an isolate takes a slice of a
 * caller's quota from the caller's `CallerGuard` (the GCRA there stays the authority) and spends
 * it locally, asking again only when the slice runs low, runs out or expires.
 *
 * Plain state only: workerd forbids awaiting a promise created by another request, so a lease is
 * numbers that any request may read and change synchronously; the request that finds it low
 * refills it (in `waitUntil`, off its response path), the one that finds it empty asks for itself.
 *
 * Bounds: leased quota is taken from the bucket when granted, so it counts as spent until it is
 * used or given back; the isolates together never admit more than the bucket allows. The cost is
 * a tolerance: a lease taken at `t` may be spent until `t + ttl`, and quota held by one isolate
 * cannot be used by another (at most `maxShare` of the burst per isolate and API), so a caller
 * near its limit may see a 429 while another isolate still holds a slice.
 */
import type { RatePolicy } from "../metering/limits";
import type { LeaseGrant, RateDecision } from "./types";

/**
 * Where leases come from: the caller's guard (tests inject a clock here). `unused` requests of an
 * expired lease are given back in the same call.
 */
export interface QuotaSource {
  lease(api: string, policy: RatePolicy, want: number, unused: number): Promise<LeaseGrant>;
}

export interface LeaseOptions {
  /** How long a lease may be spent (ms); 0: no leases, every request asks the guard for itself. */
  ttlMs: number;
  /** Largest lease, as a share of the policy's burst (at least 1 request). */
  maxShare: number;
  /** Most leases kept per isolate (callers × APIs); the least recently used is dropped. */
  maxEntries?: number;
}

/** One caller's slice of one API's quota in this isolate. */
interface Lease {
  /** Requests left to spend. */
  remaining: number;
  /** After this (ms) the rest is given back instead of spent. */
  expiresAt: number;
  /** The size asked for last; the next ask grows from the rate seen since. */
  size: number;
  /** Requests spent since `since` (the last grant), for the rate estimate. */
  spent: number;
  since: number;
  /** The guard's `remaining` after the last grant (excludes the leased requests). */
  serverRemaining: number;
  /** When the full burst is back, per the last grant (ms). */
  resetAt: number;
  /** When a background refill was started (0: none in flight). */
  refillingSince: number;
}

/** A refill that has not answered after this long is presumed lost (its request ended). */
const REFILL_STALE_MS = 10_000;

/** An isolate's leases, keyed by caller, API and policy. */
export class LeaseHolder {
  private readonly leases = new Map<string, Lease>();
  private readonly maxEntries: number;

  constructor(private readonly options: LeaseOptions) {
    this.maxEntries = options.maxEntries ?? 10_000;
  }

  /**
   * Decides one request of `caller` on `api` under `policy`: from the local lease when it has
   * quota (no I/O), else by asking `source` (awaited), giving back what an expired lease left
   * unused in the same call. `background` receives work the request need not wait for (a refill
   * ahead of need, when half the lease is spent), e.g. `ctx.waitUntil`.
   * Errors of `source` on the awaited path propagate (the stage applies its failure mode).
   */
  async admit(
    caller: string,
    api: string,
    policy: RatePolicy,
    source: QuotaSource,
    now: number,
    background: (work: Promise<unknown>) => void,
  ): Promise<RateDecision> {
    if (this.options.ttlMs <= 0) return (await source.lease(api, policy, 1, 0)).decision;
    const key = `${caller}\n${api}\n${policy.limit}/${policy.window}/${policy.burst ?? ""}`;
    const lease = this.lookup(key, now);
    let unused = 0;
    if (lease.expiresAt <= now && lease.remaining > 0) {
      unused = lease.remaining;
      lease.remaining = 0;
    }
    if (lease.remaining > 0) {
      lease.remaining--;
      lease.spent++;
      if (lease.remaining <= lease.size / 2 && !this.refilling(lease, now)) {
        lease.refillingSince = now;
        const want = this.nextSize(lease, policy, now);
        background(
          source.lease(api, policy, want, 0).then(
            (grant) => this.store(lease, grant, Date.now(), 0),
            () => {
              lease.refillingSince = 0;
            },
          ),
        );
      }
      return {
        allowed: true,
        remaining: Math.min(lease.remaining + lease.serverRemaining, policy.burst ?? policy.limit),
        resetSeconds: Math.max(0, Math.ceil((lease.resetAt - now) / 1000)),
        retryAfterSeconds: 0,
      };
    }
    // Empty: ask for this request. While another request's refill is under way, ask for one only,
    // so a burst of concurrent requests does not lease the same slice many times over.
    const want = this.refilling(lease, now) ? 1 : this.nextSize(lease, policy, now);
    const grant = await source.lease(api, policy, want, unused);
    if (grant.granted > 0) this.store(lease, grant, now, 1);
    return grant.decision;
  }

  /** Requests leased in this isolate and not yet spent (tests, diagnostics). */
  held(caller: string, api: string, policy: RatePolicy): number {
    const key = `${caller}\n${api}\n${policy.limit}/${policy.window}/${policy.burst ?? ""}`;
    return this.leases.get(key)?.remaining ?? 0;
  }

  private refilling(lease: Lease, now: number): boolean {
    return lease.refillingSince !== 0 && now - lease.refillingSince < REFILL_STALE_MS;
  }

  /**
   * The next lease size: the rate seen since the last grant times the lease's lifetime, at most
   * double the last size (a lone request does not lease a large slice), at most `maxShare` of the
   * burst, at least 1.
   */
  private nextSize(lease: Lease, policy: RatePolicy, now: number): number {
    const cap = Math.max(1, Math.floor((policy.burst ?? policy.limit) * this.options.maxShare));
    const elapsed = Math.max(now - lease.since, 1);
    const perLease = Math.ceil((lease.spent * this.options.ttlMs) / elapsed);
    return Math.max(1, Math.min(cap, perLease, 2 * lease.size + 1));
  }

  /** Adds a grant to `lease`, `used` of it already spent by the asking request. */
  private store(lease: Lease, grant: LeaseGrant, now: number, used: number): void {
    lease.refillingSince = used === 0 ? 0 : lease.refillingSince;
    if (grant.granted <= 0) return;
    lease.remaining += grant.granted - used;
    lease.size = grant.granted;
    lease.spent = used;
    lease.since = now;
    lease.expiresAt = now + this.options.ttlMs;
    lease.serverRemaining = grant.decision.remaining;
    lease.resetAt = now + grant.decision.resetSeconds * 1000;
  }

  private lookup(key: string, now: number): Lease {
    let lease = this.leases.get(key);
    if (lease) {
      // Most recently used last, so the first entry is the one to evict.
      this.leases.delete(key);
      this.leases.set(key, lease);
      return lease;
    }
    if (this.leases.size >= this.maxEntries) {
      // Its unused quota is not given back (it may be another caller's); the bucket refills it.
      const oldest = this.leases.keys().next().value as string;
      this.leases.delete(oldest);
    }
    lease = {
      remaining: 0,
      expiresAt: 0,
      size: 0,
      spent: 0,
      since: now,
      serverRemaining: 0,
      resetAt: now,
      refillingSince: 0,
    };
    this.leases.set(key, lease);
    return lease;
  }
}
