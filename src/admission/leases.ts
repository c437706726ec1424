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

import { BoundedMap } from "../bounded-map";
import type { RateDecision } from "../contracts/rate";
import type { RatePolicy } from "../contracts/settings";
import type { LeaseGrant } from "./types";

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
  /** Requests spent since the last grant, the first of them at `firstSpentAt` (rate estimate). */
  spent: number;
  firstSpentAt: number;
  /** Requests of an expired lease to give back with the next call. */
  unused: number;
  /** How long the last lease call took (ms): how long a request waits for a refill under way. */
  rpcMs: number;
  /** The guard's `remaining` after the last grant (excludes the leased requests). */
  serverRemaining: number;
  /** When the full burst is back, per the last grant (ms). */
  resetAt: number;
  /** When a background refill was started (0: none in flight). */
  refillingSince: number;
}

/**
 * A refill that has not answered after this long is presumed lost (the request that started it
 * was cancelled, e.g. its client went away).
 */
const REFILL_STALE_MS = 2000;

/** Most 1 ms waits of a request for another request's refill before it asks for itself. */
const MAX_POLL_MS = 250;

/** An isolate's leases, keyed by caller, API and policy. */
export class LeaseHolder {
  private readonly leases: BoundedMap<string, Lease>;

  constructor(private readonly options: LeaseOptions) {
    this.leases = new BoundedMap(options.maxEntries ?? 10_000);
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
    const { lease, ask } = this.prepare(caller, api, policy, source, now);
    if (lease.remaining > 0) return this.spend(lease, policy, now, ask, background);
    if (this.refilling(lease, now)) {
      // Another request's refill is under way: wait for it briefly by looking at the plain state
      // (never at its promise), then, if it has not come, ask for this request alone, so a burst
      // of concurrent requests does not lease the same slice many times over.
      // Counted, not timed: the clock of a request need not move while it only waits on timers.
      const polls = Math.min(2 * lease.rpcMs + 5, MAX_POLL_MS);
      for (let i = 0; i < polls && this.refilling(lease, now); i++) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (lease.remaining > 0) return this.spend(lease, policy, now, ask, background);
      }
      if (lease.remaining > 0) return this.spend(lease, policy, now, ask, background);
      const grant = await ask(1);
      if (grant.granted > 0) this.count(lease, now);
      return grant.decision;
    }
    lease.refillingSince = now;
    const started = Date.now();
    let grant: LeaseGrant;
    try {
      grant = await ask(this.nextSize(lease, policy, now));
    } finally {
      lease.refillingSince = 0;
    }
    lease.rpcMs = Date.now() - started;
    this.store(lease, grant, now, 1);
    return grant.decision;
  }

  /**
   * `admit`'s answer when the local lease has quota, decided synchronously (no I/O, no promise);
   * undefined when the request must go through `admit` (no lease, or it is empty or expired).
   */
  admitLocal(
    caller: string,
    api: string,
    policy: RatePolicy,
    source: QuotaSource,
    now: number,
    background: (work: Promise<unknown>) => void,
  ): RateDecision | undefined {
    if (this.options.ttlMs <= 0) return undefined;
    const { lease, ask } = this.prepare(caller, api, policy, source, now);
    return lease.remaining > 0 ? this.spend(lease, policy, now, ask, background) : undefined;
  }

  /**
   * The lease of `caller` on `api` under `policy` (an expired one's rest set aside to give back),
   * and the lease call for `want` requests, which carries back what expired leases left unused.
   */
  private prepare(
    caller: string,
    api: string,
    policy: RatePolicy,
    source: QuotaSource,
    now: number,
  ): { lease: Lease; ask: (want: number) => Promise<LeaseGrant> } {
    const key = `${caller}\n${api}\n${policy.limit}/${policy.window}/${policy.burst ?? ""}`;
    const lease = this.lookup(key, now);
    if (lease.expiresAt <= now && lease.remaining > 0) {
      lease.unused += lease.remaining;
      lease.remaining = 0;
      lease.spent = 0;
    }
    const ask = (want: number) => {
      const unused = lease.unused;
      lease.unused = 0;
      return source.lease(api, policy, want, unused);
    };
    return { lease, ask };
  }

  /** Spends one request of `lease`; starts the next refill in the background at half. */
  private spend(
    lease: Lease,
    policy: RatePolicy,
    now: number,
    ask: (want: number) => Promise<LeaseGrant>,
    background: (work: Promise<unknown>) => void,
  ): RateDecision {
    lease.remaining--;
    this.count(lease, now);
    if (lease.remaining <= lease.size / 2 && !this.refilling(lease, now)) {
      lease.refillingSince = now;
      const started = Date.now();
      background(
        ask(this.nextSize(lease, policy, now)).then(
          (grant) => {
            lease.rpcMs = Date.now() - started;
            this.store(lease, grant, Date.now(), 0);
          },
          (error: unknown) => {
            lease.refillingSince = 0;
            throw error;
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

  /** Counts one request spent, for the rate estimate. */
  private count(lease: Lease, now: number): void {
    if (lease.spent === 0) lease.firstSpentAt = now;
    lease.spent++;
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
   * The next lease size: the rate seen since the last grant (from the first request spent after
   * it, so idle time does not dilute it) times the lease's lifetime, at most double the larger of
   * the last size and the requests seen (a lone request does not lease a large slice), at most
   * `maxShare` of the burst, at least 1. After an idle spell (nothing spent) half the last size.
   */
  private nextSize(lease: Lease, policy: RatePolicy, now: number): number {
    const cap = Math.max(1, Math.floor((policy.burst ?? policy.limit) * this.options.maxShare));
    if (lease.spent === 0) return Math.max(1, Math.min(cap, Math.ceil(lease.size / 2)));
    const elapsed = Math.max(now - lease.firstSpentAt, 1);
    const perLease = Math.ceil((lease.spent * this.options.ttlMs) / elapsed);
    return Math.max(1, Math.min(cap, perLease, 2 * Math.max(lease.size, lease.spent) + 1));
  }

  /** Adds a grant to `lease`, `used` of it already spent by the asking request. */
  private store(lease: Lease, grant: LeaseGrant, now: number, used: number): void {
    lease.refillingSince = 0;
    if (grant.granted <= 0) return;
    lease.remaining += grant.granted - used;
    lease.size = grant.granted;
    lease.spent = used;
    lease.firstSpentAt = now;
    lease.expiresAt = now + this.options.ttlMs;
    lease.serverRemaining = grant.decision.remaining;
    lease.resetAt = now + grant.decision.resetSeconds * 1000;
  }

  private lookup(key: string, now: number): Lease {
    // Most recently used last; past `maxEntries` the least recently used lease is dropped, and
    // its unused quota is not given back (it may be another caller's): the bucket refills it.
    let lease = this.leases.touch(key);
    if (lease) return lease;
    lease = {
      remaining: 0,
      expiresAt: 0,
      size: 0,
      spent: 0,
      firstSpentAt: now,
      unused: 0,
      rpcMs: 0,
      serverRemaining: 0,
      resetAt: now,
      refillingSince: 0,
    };
    this.leases.set(key, lease);
    return lease;
  }
}
