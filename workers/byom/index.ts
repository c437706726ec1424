/**
 * The isolated BYOM Worker: uploaded (bring-your-own) models are loaded, probed and run here, in an
 * isolate of their own (own ORT instance and WASM heap, own `[limits] cpu_ms`), reached only by the
 * main Worker's `BYOM` service binding. A thin adapter: each RPC checks what crossed and calls the
 * core (src/byom/runner.ts); the client side is src/inference/isolation.ts. docs/byom.md#isolation.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { answer, loadRunnerConfig, openModel, runModel, validateUpload } from "../../src/byom/runner";
import { markIsolatedRunner } from "../../src/inference/isolation";

markIsolatedRunner();

/** What the isolated Worker is bound to (workers/byom/wrangler.toml). */
interface ByomEnv {
  MODELS: R2Bucket;
  [name: string]: unknown;
}

export default class ByomRunner extends WorkerEntrypoint<ByomEnv> {
  /** No HTTP surface: only the main Worker's RPC calls reach the models. */
  override async fetch(): Promise<Response> {
    return new Response(null, { status: 404 });
  }

  open(key: unknown) {
    return answer(() => openModel(this.env.MODELS, loadRunnerConfig(this.env), key));
  }

  run(key: unknown, feeds: unknown) {
    return answer(() => runModel(this.env.MODELS, loadRunnerConfig(this.env), key, feeds));
  }

  validate(manifest: unknown, bytes: unknown, limits: unknown) {
    return answer(() => validateUpload(loadRunnerConfig(this.env), manifest, bytes, limits));
  }
}
