import { DependencyError, errorMessage } from "./core/errors.js";
import type { CheckOutcome } from "./doctor.js";
import type { NomadClient } from "./nomad/client.js";
import type { NomadConstraint, NomadJob, NomadNode } from "./nomad/types.js";

// doctor: can a class's runner job be placed at all? Its node pool must exist, and some ready,
// eligible node of it must be in one of its datacenters and meet its constraints, as Nomad's
// scheduler judges them (hashicorp/nomad scheduler/feasible/feasible.go resolveTarget and
// checkConstraint). Version, semver and ordering operands are not judged here: a node is then
// "undecided", never counted as fitting.

/** Every constraint of the job, its groups and its tasks (all must hold on one node). */
export function constraintsOf(job: NomadJob): NomadConstraint[] {
  const groups = job.TaskGroups ?? [];
  return [...(job.Constraints ?? []), ...groups.flatMap((g) => [...(g.Constraints ?? []), ...(g.Tasks ?? []).flatMap((t) => t.Constraints ?? [])])];
}

/** resolveTarget: a literal, or a node field, attribute or meta value (found or not). */
function resolve(target: string, node: NomadNode): { value: string; found: boolean } {
  if (!target.startsWith("${")) return { value: target, found: true };
  const fields: Record<string, string | undefined> = {
    "${node.unique.id}": node.ID,
    "${node.datacenter}": node.Datacenter,
    "${node.unique.name}": node.Name,
    "${node.class}": node.NodeClass ?? "",
    "${node.pool}": node.NodePool,
  };
  if (target in fields) return { value: fields[target] ?? "", found: true };
  const within = (prefix: string, map: Record<string, string> | null | undefined) => {
    const value = map?.[target.slice(prefix.length, -1)];
    return { value: value ?? "", found: value !== undefined };
  };
  if (target.startsWith("${attr.")) return within("${attr.", node.Attributes);
  if (target.startsWith("${meta.")) return within("${meta.", node.Meta);
  return { value: "", found: false };
}

const set = (csv: string) => new Set(csv.split(",").map((s) => s.trim()));

/** checkConstraint; undefined for operands this check does not judge. */
export function meets(node: NomadNode, c: NomadConstraint): boolean | undefined {
  const l = resolve(c.LTarget ?? "", node);
  const r = resolve(c.RTarget ?? "", node);
  switch (c.Operand ?? "=") {
    case "distinct_hosts":
    case "distinct_property":
      return true;
    case "=":
    case "==":
    case "is":
      return l.found && r.found && l.value === r.value;
    case "!=":
    case "not":
      // reflect.DeepEqual of the two values: a missing one is nil, unequal to any string.
      return !(l.found === r.found && l.value === r.value);
    case "is_set":
      return l.found;
    case "is_not_set":
      return !l.found;
    case "regexp":
      return l.found && r.found && safeRegExp(r.value)?.test(l.value) === true;
    case "set_contains":
    case "set_contains_all": {
      const have = set(l.value);
      return l.found && r.found && [...set(r.value)].every((v) => have.has(v));
    }
    case "set_contains_any": {
      const have = set(l.value);
      return l.found && r.found && [...set(r.value)].some((v) => have.has(v));
    }
    default:
      return undefined;
  }
}

function safeRegExp(source: string): RegExp | undefined {
  try {
    return new RegExp(source);
  } catch {
    return undefined;
  }
}

/** Does the node fit the job: in one of its datacenters (globs) and meeting every constraint? undefined: cannot tell. */
export function nodeFits(node: NomadNode, job: NomadJob): boolean | undefined {
  const dcs = job.Datacenters ?? ["*"];
  const inDc = dcs.some((dc) => new RegExp(`^${dc.split("*").map(escapeRegExp).join(".*")}$`).test(node.Datacenter));
  if (!inDc || node.Status !== "ready" || node.SchedulingEligibility !== "eligible") return false;
  let undecided = false;
  for (const c of constraintsOf(job)) {
    const ok = meets(node, c);
    if (ok === false) return false;
    if (ok === undefined) undecided = true;
  }
  return undecided ? undefined : true;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** How many nodes a look reads at most: enough to find fitting ones, bounded on big clusters. */
const NODES_READ = 25;

/** doctor: the class's node pool exists and has nodes its job can be placed on. */
export async function checkPlacement(nomad: Pick<NomadClient, "nodePool" | "nodePoolNodes" | "readNode">, job: NomadJob): Promise<CheckOutcome> {
  const poolName = job.NodePool || "default";
  let pool: { Name: string } | undefined;
  try {
    pool = await nomad.nodePool(poolName);
  } catch (err) {
    return cannotTell(err, `node pool ${poolName}`);
  }
  if (!pool)
    return {
      level: "fail",
      detail: `node pool "${poolName}" does not exist`,
      fix: `create it (\`nomad node pool apply\`) or set the job's node_pool variable`,
    };
  let nodes: Awaited<ReturnType<typeof nomad.nodePoolNodes>>;
  try {
    nodes = await nomad.nodePoolNodes(poolName);
  } catch (err) {
    return cannotTell(err, `the nodes of pool ${poolName}`);
  }
  const ready = nodes.filter((n) => n.Status === "ready" && n.SchedulingEligibility === "eligible");
  if (ready.length === 0) return { level: "fail", detail: `node pool "${poolName}" has no ready, eligible node (${nodes.length} in all)` };
  const read = await Promise.all(ready.slice(0, NODES_READ).map((n) => nomad.readNode(n.ID)));
  const verdicts = read.flatMap((n) => (n ? [nodeFits(n, job)] : []));
  const fit = verdicts.filter((v) => v === true).length;
  const undecided = verdicts.filter((v) => v === undefined).length;
  const constraints = constraintsOf(job).map((c) => `${c.LTarget ?? ""} ${c.Operand ?? "="} ${c.RTarget ?? ""}`.trim());
  const what = `pool "${poolName}"${constraints.length > 0 ? `, constraints ${constraints.join("; ")}` : ""}`;
  const of = `${read.length} of its ${ready.length} ready node(s) read`;
  if (fit > 0) return { level: "ok", detail: `${fit} node(s) fit (${what}; ${of})` };
  if (undecided > 0) return { level: "warn", detail: `no node certainly fits, ${undecided} undecided: doctor does not judge some operands (${what}; ${of})` };
  return { level: "fail", detail: `no node fits (${what}; ${of})`, fix: "add nodes that meet the constraints to the pool, or change the class's job_vars" };
}

function cannotTell(err: unknown, what: string): CheckOutcome {
  // The least-privilege run-time token may not read nodes, by design: not a finding.
  if (err instanceof DependencyError && err.status === 403) {
    return {
      level: "ok",
      detail: `not checked: the Nomad token may not read ${what} (run doctor with a token that has node read and node_pool read to check)`,
    };
  }
  return { level: "warn", detail: `cannot read ${what}: ${errorMessage(err)}` };
}
