/**
 * Rejects after `ms` with an error naming `what`, so a Durable Object (or any dependency) that
 * stops answering yields a clear response instead of a request that hangs until the client gives
 * up. The late answer, if any, is ignored.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
