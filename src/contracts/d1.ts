/** The D1 accessor every folder that reads or writes D1 uses: driver errors never reach callers. */
import { ApiError } from "../errors";

/** Runs a D1 call, turning any failure into 503 `registry_unavailable`. */
export async function d1<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (cause) {
    if (cause instanceof ApiError) throw cause;
    throw new ApiError("registry_unavailable", `the registry database failed (${what}); retry later`, {
      cause,
      headers: { "retry-after": "1" },
    });
  }
}
