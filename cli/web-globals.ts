/**
 * Stand-ins for the two web globals openapi-fetch (the SDK's client) touches on every request:
 * `new Headers()` and `body instanceof FormData`. In Node 20 either global loads undici (~20 ms of
 * CPU per CLI run, measured in docs/cli.md), although the CLI sends its requests on node:http.
 * scripts/build-cli.mjs binds these names inside openapi-fetch's module only; the rest of the
 * bundle (e.g. the multipart upload's real `FormData`) keeps the globals.
 */

/** A case-insensitive header map with the methods openapi-fetch and the SDK's middleware use. */
export class Headers {
  private readonly map = new Map<string, string>();

  constructor(init?: Record<string, string> | Iterable<[string, string]>) {
    if (init === undefined) return;
    const entries = Symbol.iterator in init ? init : Object.entries(init);
    for (const [name, value] of entries as Iterable<[string, string]>) this.append(name, value);
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  set(name: string, value: string): void {
    this.map.set(name.toLowerCase(), String(value));
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const old = this.map.get(key);
    this.map.set(key, old === undefined ? String(value) : `${old}, ${value}`);
  }

  delete(name: string): void {
    this.map.delete(name.toLowerCase());
  }

  forEach(callback: (value: string, name: string) => void): void {
    for (const [name, value] of this.map) callback(value, name);
  }

  entries(): IterableIterator<[string, string]> {
    return this.map.entries();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.map.entries();
  }
}

/** `x instanceof FormData` without loading undici: a real FormData's tag is "FormData". */
export const FormData = {
  [Symbol.hasInstance]: (value: unknown): boolean =>
    Object.prototype.toString.call(value) === "[object FormData]",
};
