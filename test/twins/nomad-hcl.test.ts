// The twin's HCL2 expressions beyond plain references, as jobspec2 evaluates them (hashicorp/hcl
// hclsyntax: conditionals, equality, templates in quoted strings; go-cty stdlib merge and
// jsonencode; runtime references such as ${attr.*} kept for the client).

import { describe, expect, it } from "vitest";
import { parseJobspec } from "./nomad-jobspec.js";
import type { TwinTask } from "./nomad-types.js";

async function taskEnv(variables: string): Promise<Record<string, string>> {
  const hcl = `
variable "addr" {
  type    = string
  default = ""
}
variable "tls" {
  type    = bool
  default = false
}
variable "n" {
  type    = number
  default = 0
}
variable "extra" {
  type    = map(string)
  default = {}
}
variable "list" {
  type    = list(string)
  default = []
}
locals {
  env = {
    ADDR   = var.addr != "" ? var.addr : var.tls ? "https://\${attr.unique.network.ip-address}:4646" : "http://\${attr.unique.network.ip-address}:4646"
    COUNT  = var.n == 0 ? "none" : "n=\${var.n}"
    JSON   = jsonencode(var.list)
    NESTED = join(",", [var.n != 0 ? "a" : "", "b"])
  }
}
job "j" {
  group "g" {
    task "t" {
      driver = "docker"
      env    = merge(var.extra, local.env)
    }
  }
}`;
  const job = await parseJobspec({ hcl, variables });
  const task = (job.TaskGroups as Array<{ Tasks: TwinTask[] }>)[0]?.Tasks[0];
  return task?.Env ?? {};
}

describe("HCL2 expressions in the Nomad twin", () => {
  it("conditionals pick a branch; a branch's runtime references stay for the client", async () => {
    expect(await taskEnv("")).toMatchObject({ ADDR: "http://${attr.unique.network.ip-address}:4646", COUNT: "none", JSON: "[]", NESTED: ",b" });
    expect(await taskEnv("tls = true\nn = 3")).toMatchObject({ ADDR: "https://${attr.unique.network.ip-address}:4646", COUNT: "n=3", NESTED: "a,b" });
    expect((await taskEnv('addr = "http://nomad:4646"')).ADDR).toBe("http://nomad:4646");
  });

  it("merge lets later maps win; jsonencode escapes as encoding/json does", async () => {
    const env = await taskEnv('extra = { COUNT = "x", OTHER = "y" }\nlist = ["a<b", "c"]');
    expect(env).toMatchObject({ COUNT: "none", OTHER: "y", JSON: '["a\\u003cb","c"]' });
  });
});
