import { DependencyError } from "../../src/core/errors.js";

/**
 * Failures a fake answers with, per method name: each queued error is thrown once, by the next
 * call of that method, before the call has any effect.
 */
export class Faults {
  private readonly queued = new Map<string, Error[]>();
  /** Every call made, in order, as `method` (tests assert what happened and in which order). */
  readonly calls: string[] = [];

  constructor(private readonly dependency: DependencyError["dependency"]) {}

  /** The next `times` calls of `method` fail with a transient error (503, worth a retry). */
  transient(method: string, times = 1): void {
    for (let i = 0; i < times; i++) this.push(method, new DependencyError(this.dependency, `${method}: 503 unavailable`, 503, true));
  }

  /** The next call of `method` fails for good (403: retrying cannot help). */
  permanent(method: string): void {
    this.push(method, new DependencyError(this.dependency, `${method}: 403 forbidden`, 403, false));
  }

  /** Records the call and throws the failure queued for it, if any. */
  enter(method: string): void {
    this.calls.push(method);
    const err = this.queued.get(method)?.shift();
    if (err) throw err;
  }

  count(method: string): number {
    return this.calls.filter((c) => c === method).length;
  }

  private push(method: string, err: Error): void {
    this.queued.set(method, [...(this.queued.get(method) ?? []), err]);
  }
}
