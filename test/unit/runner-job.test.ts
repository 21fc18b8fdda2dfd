import { readFileSync } from "node:fs";
import hcl2json from "@cdktf/hcl2json";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BUNDLED_RUNNER_JOB_FILE } from "../../src/config.js";
import { hclString, inlineFiles, runnerJobVariables } from "../../src/nomad/runner-job.js";
import { LATEST_RUNNER_VERSION, versionVerdict } from "../twins/github-releases.js";

const JOB_FILE = BUNDLED_RUNNER_JOB_FILE;

describe("inlining the runner job's scripts for /v1/jobs/parse", () => {
  it("replaces every file() call with the exact text of the script it names", async () => {
    const hcl = readFileSync(JOB_FILE, "utf8");
    expect(hcl).toMatch(/file\("runner\/configure-runner\.sh"\)/);
    const inlined = await inlineFiles(hcl, JOB_FILE);
    expect(inlined).not.toMatch(/\bfile\("/);
    const parsed = (await hcl2json.parse("job.hcl", inlined)) as {
      job: Record<string, Array<{ group: Record<string, Array<{ task: Record<string, Array<{ template?: Array<{ data: string }> }>> }>> }>>;
    };
    const tasks = parsed.job["github-runner"]![0]!.group.runner![0]!.task;
    const data = (task: string) => tasks[task]![0]!.template![0]!.data;
    // hcl2json keeps HCL's `$${` escape in its output; Nomad evaluates it to a literal `${`.
    const literal = (text: string) => text.replace(/\$\$\{/g, "${").replace(/%%\{/g, "%{");
    expect(literal(data("configure-runner"))).toBe(readFileSync(new URL("../../jobs/runner/configure-runner.sh", import.meta.url), "utf8"));
    expect(literal(data("runner"))).toBe(readFileSync(new URL("../../jobs/runner/run-runner.sh", import.meta.url), "utf8"));
  });

  it("quotes any text so that HCL reads back exactly that text, interpolations and directives included", async () => {
    // HCL normalises string literals to Unicode NFC (hashicorp/hcl hclsyntax), whatever the quoting.
    const pieces = fc.oneof(fc.string({ unit: "binary" }), fc.constantFrom("${", "%{", "$${", "%%{", "${x}", "%{ if }", "\\", '"', "\n"));
    const nfc = fc
      .array(pieces)
      .map((parts) => parts.join(""))
      .filter((text) => text === text.normalize("NFC"));
    await fc.assert(
      fc.asyncProperty(nfc, async (text) => {
        const parsed = (await hcl2json.parse("t.hcl", `value = ${hclString(text)}\n`)) as { value: string };
        expect(parsed.value.replace(/\$\$\{/g, "${").replace(/%%\{/g, "%{")).toBe(text);
      }),
      { numRuns: 200 },
    );
  });
});

describe("runner job variables", () => {
  const vault = { addr: "https://vault:8200", kvMount: "kv", kvPrefix: "ci", credentialDelivery: "workload-identity" } as const;
  it("passes what the runners need to reach their secrets in Vault, unless the operator's file sets it", () => {
    expect(runnerJobVariables({ ...vault, namespace: "team-a" }, "cpu = 500\n")).toBe(
      'vault_addr = "https://vault:8200"\nvault_namespace = "team-a"\nvault_kv_mount = "kv"\nvault_kv_prefix = "ci"\ncpu = 500\n',
    );
    expect(runnerJobVariables(vault, 'vault_addr = "https://other:8200"\n')).toBe(
      'vault_kv_mount = "kv"\nvault_kv_prefix = "ci"\nvault_addr = "https://other:8200"\n',
    );
  });

  it("turns the prestart's vault block off for the wrapping-token fallback", () => {
    expect(runnerJobVariables({ ...vault, credentialDelivery: "wrap" }, "")).toContain('vault_role = ""\n');
    expect(runnerJobVariables(vault, "")).not.toContain("vault_role");
  });
});

describe("the pinned runner image", () => {
  it("is the newest actions/runner release, so GitHub neither refuses it nor makes it update before each job", async () => {
    const parsed = (await hcl2json.parse("job.hcl", readFileSync(JOB_FILE, "utf8"))) as { variable: { image: Array<{ default: string }> } };
    const image = parsed.variable.image[0]!.default;
    const version = /^ghcr\.io\/actions\/actions-runner:(\d+\.\d+\.\d+)$/.exec(image)?.[1];
    expect(version, image).toBe(LATEST_RUNNER_VERSION);
    // GitHub's rule, as the twin's broker applies it: current, whatever --disableupdate says.
    expect(versionVerdict(version!, true, Date.now())).toEqual({ kind: "current" });
    expect(versionVerdict(version!, false, Date.now())).toEqual({ kind: "current" });
  });
});
