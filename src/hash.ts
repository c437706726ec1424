/** Lower-case hex SHA-256 (Web Crypto: available in Node ≥ 20 and workerd). */
export async function sha256Hex(bytes: ArrayBuffer | Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    bytes instanceof Uint8Array ? new Uint8Array(bytes) : bytes,
  );
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
