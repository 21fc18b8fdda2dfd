import type { NomadVariable, VariableMeta, Variables } from "../../src/ports/index.js";
import { Faults } from "./faults.js";

/**
 * Nomad Variables in memory, with Nomad's CAS rules (nomad/state/state_store_variables.go
 * varSetCASTxn: index 0 = only if absent, a missing variable conflicts as nothing) and one raft
 * index for every write. `nowNs` is the servers' clock; tests move it.
 */
export class FakeVariables implements Variables {
  readonly faults = new Faults("nomad");
  private readonly vars = new Map<string, NomadVariable>();
  private index = 100;
  nowNs = 1_700_000_000_000 * 1e6;

  async read(path: string): Promise<NomadVariable | undefined> {
    this.faults.enter("read");
    return this.copy(this.vars.get(path));
  }

  async compareAndSet(
    path: string,
    items: Record<string, string>,
    index: number,
  ): Promise<{ written: NomadVariable } | { conflict: NomadVariable | undefined }> {
    this.faults.enter("compareAndSet");
    const existing = this.vars.get(path);
    if ((existing?.modifyIndex ?? 0) !== index) return { conflict: this.copy(existing) };
    return { written: this.write(path, items) };
  }

  async put(path: string, items: Record<string, string>): Promise<NomadVariable> {
    this.faults.enter("put");
    return this.write(path, items);
  }

  async list(prefix: string): Promise<VariableMeta[]> {
    this.faults.enter("list");
    return [...this.vars.values()]
      .filter((v) => v.path.startsWith(prefix))
      .sort((a, b) => (a.path < b.path ? -1 : 1))
      .map(({ items: _items, ...meta }) => meta);
  }

  async remove(path: string, index?: number): Promise<void> {
    this.faults.enter("remove");
    const existing = this.vars.get(path);
    if (index !== undefined && existing && existing.modifyIndex !== index) return;
    this.vars.delete(path);
  }

  /** What is stored at `path` now (tests). */
  peek(path: string): NomadVariable | undefined {
    return this.copy(this.vars.get(path));
  }

  private write(path: string, items: Record<string, string>): NomadVariable {
    this.index += 1;
    const written = { path, items: { ...items }, modifyIndex: this.index, modifyTimeNs: this.nowNs };
    this.vars.set(path, written);
    return { ...written, items: { ...items } };
  }

  private copy(v: NomadVariable | undefined): NomadVariable | undefined {
    return v && { ...v, items: { ...v.items } };
  }
}
