import { describe, expect, it, vi } from "vitest";
import { releaseRunner, releaseSpentRunner } from "../../src/teardown/release.js";
import { addRunnerJob, fakeDeps, PREFIX } from "../fakes/deps.js";

const target = { owner: "acme", repo: "app" };
const runner = `${PREFIX}-42`;

/** A runner as provisioning leaves it: registered, its credential stored, its runner job live. */
function provisioned(state: { busy?: boolean } = {}) {
  const deps = fakeDeps();
  deps.github.register(target, runner, { busy: state.busy, online: true });
  deps.vault.secrets.set(runner, { kind: "jit", jitconfig: "x" });
  const child = addRunnerJob(deps, 42);
  return { deps, child };
}

describe("releaseRunner", () => {
  it("deregisters an unneeded runner, stops its runner job and deletes its credential", async () => {
    const { deps, child } = provisioned();
    expect(await releaseRunner(deps, target, runner, "unneeded")).toBe("released");
    expect(deps.github.runners.get("acme/app")).toEqual([]);
    expect(deps.nomad.children.find((c) => c.ID === child)).toMatchObject({ Stop: true });
    expect(deps.vault.secrets.has(runner)).toBe(false);
    expect(deps.github.faults.count("deleteRunner")).toBe(1);
    expect(deps.nomad.faults.calls).toEqual(["listJobs", "stopJob"]);
  });

  it("retries a transient failure at every step instead of leaving half a runner behind", async () => {
    const { deps } = provisioned();
    deps.nomad.faults.transient("listJobs");
    deps.github.faults.transient("deleteRunner");
    deps.nomad.faults.transient("stopJob");
    deps.vault.faults.transient("deleteRunnerSecret", 2);
    expect(await releaseRunner(deps, target, runner, "unneeded")).toBe("released");
    expect(deps.github.runners.get("acme/app")).toEqual([]);
    expect(deps.nomad.children[0]).toMatchObject({ Stop: true });
    expect(deps.vault.secrets.has(runner)).toBe(false);
    expect(deps.vault.faults.count("deleteRunnerSecret")).toBe(3);
  });

  it("the reconciler's clean-up retries too", async () => {
    const deps = fakeDeps();
    deps.github.register(target, runner);
    deps.vault.secrets.set(runner, { kind: "jit", jitconfig: "x" });
    deps.github.faults.transient("findRunner");
    deps.vault.faults.transient("deleteRunnerSecret");
    expect(await releaseRunner(deps, target, runner, "leftovers")).toBe("released");
    expect(deps.github.runners.get("acme/app")).toEqual([]);
    expect(deps.vault.secrets.has(runner)).toBe(false);
  });

  it("never deregisters a busy runner, nor stops its job or takes its credential", async () => {
    const { deps, child } = provisioned({ busy: true });
    expect(await releaseRunner(deps, target, runner, "unneeded")).toBe("busy");
    expect(deps.github.runners.get("acme/app")).toHaveLength(1);
    expect(deps.github.faults.count("deleteRunner")).toBe(0);
    expect(deps.nomad.children.find((c) => c.ID === child)).toMatchObject({ Stop: false });
    expect(deps.vault.secrets.has(runner)).toBe(true);
  });

  it("keeps a runner that turned busy between the lookup and the deregistration", async () => {
    const { deps } = provisioned();
    const find = deps.github.findRunner.bind(deps.github);
    deps.github.findRunner = async (t, name) => {
      const found = await find(t, name);
      // It takes a job right after GitHub listed it idle.
      for (const r of deps.github.runners.get("acme/app") ?? []) r.busy = true;
      return found;
    };
    expect(await releaseRunner(deps, target, runner, "unneeded")).toBe("busy");
    expect(deps.github.runners.get("acme/app")).toHaveLength(1);
    expect(deps.vault.secrets.has(runner)).toBe(true);
  });

  it("never deregisters a busy runner when cleaning up leftovers either", async () => {
    const deps = fakeDeps();
    deps.github.register(target, runner, { busy: true });
    await releaseRunner(deps, target, runner, "leftovers");
    expect(deps.github.runners.get("acme/app")).toHaveLength(1);
    expect(deps.github.faults.count("deleteRunner")).toBe(0);
  });

  describe("a runner whose allocation was refused its credential (possible theft)", () => {
    /** A runner job that ended: failed with these task exit codes, or complete. */
    function ended(exits: Array<{ task: string; exitCode: number }>, state: { busy?: boolean } = {}) {
      const { deps, child } = provisioned(state);
      const stub = deps.nomad.children.find((c) => c.ID === child)!;
      Object.assign(stub, {
        Status: "dead",
        exits,
        JobSummary: { Summary: { runner: exits.some((e) => e.exitCode !== 0) ? { Failed: 1 } : { Complete: 1 } } },
      });
      const spy = vi.spyOn(deps.log, "error");
      return {
        deps,
        errors: {
          get messages() {
            return spy.mock.calls.map((call) => String(call[1]));
          },
        },
      };
    }

    it("removes the registration and the secret and says so at error level, when the prestart exited 97", async () => {
      const { deps, errors } = ended([{ task: "configure-runner", exitCode: 97 }]);
      expect(await releaseRunner(deps, target, runner, "leftovers")).toBe("credential-refused");
      expect(deps.github.runners.get("acme/app")).toEqual([]);
      expect(deps.vault.secrets.has(runner)).toBe(false);
      expect(errors.messages).toEqual([expect.stringContaining("possible theft")]);
    });

    it("tries to remove it even when busy (someone else may run it), and says GitHub refused", async () => {
      const { deps, errors } = ended([{ task: "configure-runner", exitCode: 97 }], { busy: true });
      expect(await releaseRunner(deps, target, runner, "leftovers")).toBe("credential-refused");
      expect(deps.github.faults.count("deleteRunner")).toBe(1);
      expect(deps.vault.secrets.has(runner)).toBe(false);
      expect(errors.messages).toEqual([expect.stringContaining("running a job outside Nomad")]);
    });

    it("treats other failures as ordinary leftovers, and reads no allocation of a runner job that did not fail", async () => {
      const failed = ended([
        { task: "configure-runner", exitCode: 0 },
        { task: "runner", exitCode: 1 },
      ]);
      expect(await releaseRunner(failed.deps, target, runner, "leftovers")).toBe("released");
      expect(failed.errors.messages).toEqual([]);
      expect(failed.deps.nomad.faults.count("taskExits")).toBe(1);

      const complete = ended([{ task: "runner", exitCode: 0 }]);
      expect(await releaseRunner(complete.deps, target, runner, "leftovers")).toBe("released");
      expect(complete.deps.nomad.faults.count("taskExits")).toBe(0);
    });
  });

  it("leaves leftovers alone once a live runner job shows the name was provisioned again", async () => {
    const { deps } = provisioned();
    expect(await releaseRunner(deps, target, runner, "leftovers")).toBe("reprovisioned");
    expect(deps.github.runners.get("acme/app")).toHaveLength(1);
    expect(deps.vault.secrets.has(runner)).toBe(true);
    expect(deps.nomad.children[0]).toMatchObject({ Stop: false });
  });

  it("on the webhook path, costs no GitHub call for a runner that was never dispatched", async () => {
    const deps = fakeDeps();
    deps.vault.secrets.set(runner, { kind: "jit", jitconfig: "x" });
    expect(await releaseRunner(deps, target, runner, "unneeded-if-dispatched")).toBe("absent");
    expect(deps.github.faults.calls).toEqual([]);
    // A half-done provisioning's credential is the reconciler's to remove.
    expect(deps.vault.secrets.has(runner)).toBe(true);
  });

  it("on the webhook path, asks nobody when the runner index knows nothing was dispatched", async () => {
    const deps = fakeDeps();
    deps.runnerIndex.listingDone(deps.runnerIndex.listingStarted(), []);
    expect(await releaseRunner(deps, target, runner, "unneeded-if-dispatched")).toBe("absent");
    expect(deps.nomad.faults.calls).toEqual([]);
  });
});

describe("releaseSpentRunner", () => {
  it("deletes the credential of a runner whose job is done, retrying a transient failure", async () => {
    const deps = fakeDeps();
    deps.vault.secrets.set(runner, { kind: "jit", jitconfig: "x" });
    deps.vault.faults.transient("deleteRunnerSecret");
    await releaseSpentRunner(deps, runner);
    expect(deps.vault.secrets.has(runner)).toBe(false);
  });
});
