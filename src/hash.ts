/** Lower-case hex SHA-256 (Web Crypto: available in Node ≥ 20 and workerd). */
export async function sha256Hex(bytes: ArrayBuffer | Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes instanceof Uint8Array ? new Uint8Array(bytes) : bytes,
  );
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * MurmurHash3's 32-bit finalizer (fmix32): mixes every input bit into every output bit; returns an
 * unsigned 32-bit integer. The last step of the featurizer's murmur3 and of the split's fallback hash.
 */
export function fmix32(h: number): number {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
