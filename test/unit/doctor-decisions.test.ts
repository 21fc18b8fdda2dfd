import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { assignedVariables, declaredVariables, undeclaredVariables } from "../../src/core/hcl-variables.js";
import { kvMountProblem } from "../../src/core/kv-mount.js";
import { runnerJobVariables, varsFileProblem } from "../../src/nomad/runner-job.js";

const RUNNER_JOB = readFileSync(new URL("../../jobs/github-runner.nomad.hcl", import.meta.url), "utf8");

describe("is the mount KV version 2", () => {
  it("decides from sys/internal/ui/mounts' answer", () => {
    expect(kvMountProblem("secret", { type: "kv", options: { version: "2" } })).toBeUndefined();
    expect(kvMountProblem("secret", undefined)).toBe("no secrets engine is mounted at secret/ (or the token may use nothing under it)");
    expect(kvMountProblem("kv", { type: "kv", options: { version: "1" } })).toBe(
      "kv/ is KV version 1; runner secrets need version 2 (check-and-set writes, versions, metadata)",
    );
    // A KV mount without options is version 1 (vault secrets enable kv).
    expect(kvMountProblem("kv", { type: "kv", options: null })).toMatch(/^kv\/ is KV version 1;/);
    expect(kvMountProblem("pki", { type: "pki", options: null })).toBe("pki/ is a pki secrets engine, not KV");
    expect(kvMountProblem("x", {})).toBe("x/ is a unknown secrets engine, not KV");
  });
});

describe("variables a job declares and a vars file sets", () => {
  it("reads the shipped runner job's declarations", () => {
    expect(declaredVariables(RUNNER_JOB)).toEqual([
      "vault_addr",
      "vault_namespace",
      "vault_ca_pem",
      "vault_role",
      "vault_kv_mount",
      "vault_kv_prefix",
      "datacenters",
      "node_pool",
      "image",
      "docker",
      "dind_image",
      "dind_cpu",
      "dind_memory",
      "dind_disk",
      "docker_socket_gid",
      "cpu",
      "memory",
    ]);
  });

  it("takes only top-level assignments: not keys inside objects, lists, heredocs, strings or comments", () => {
    const vars = [
      '# image = "commented out"',
      'image = "ghcr.io/actions/actions-runner:2.336.0" # trailing comment with { brace',
      "datacenters = [",
      '  "dc1", # inside = a list',
      "]",
      "meta = {",
      '  owner = "ci"',
      "  nested = { deep = 1 }",
      "}",
      "notes = <<EOT",
      "cpu = this is heredoc text",
      "EOT",
      "memory = 2048 // c++ comment = x",
      '/* cpu = 1 */ node_pool = "gpu"',
      'quoted = "a { b" ',
      "cpu=500",
    ].join("\n");
    expect(assignedVariables(vars)).toEqual(["image", "datacenters", "meta", "notes", "memory", "node_pool", "quoted", "cpu"]);
    expect(undeclaredVariables(RUNNER_JOB, vars)).toEqual(["meta", "notes", "quoted"]);
  });

  it("names the misspelt variables and what the job declares", () => {
    expect(varsFileProblem(RUNNER_JOB, 'imgae = "x"\ncpu = 1\n', "/etc/runner.vars.hcl")).toBe(
      '/etc/runner.vars.hcl sets "imgae", which the runner job does not declare (Nomad would ignore it); it declares vault_addr, vault_namespace, vault_ca_pem, vault_role, vault_kv_mount, vault_kv_prefix, datacenters, node_pool, image, docker, dind_image, dind_cpu, dind_memory, dind_disk, docker_socket_gid, cpu, memory',
    );
    expect(varsFileProblem(RUNNER_JOB, 'image = "x"\n', "f")).toBeUndefined();
  });

  it("the dispatcher passes its Vault CA to the runner job as vault_ca_pem, unless the operator's file sets it", () => {
    const vault = { addr: "https://vault:8200", kvMount: "secret", kvPrefix: "p", credentialDelivery: "workload-identity" as const };
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    expect(runnerJobVariables({ ...vault, caPem: pem }, "")).toContain(`vault_ca_pem = ${JSON.stringify(pem)}\n`);
    expect(runnerJobVariables(vault, "")).not.toContain("vault_ca_pem");
    expect(runnerJobVariables({ ...vault, caPem: pem }, 'vault_ca_pem = "operator"\n').match(/vault_ca_pem/g)).toHaveLength(1);
  });
});
