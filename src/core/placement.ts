// Can a class's runner job be placed, and run, on the nodes of its pool? Pure decisions on the
// node and job fields Nomad's API returns (structs.Node, api.Job), named as Nomad names them.
//
// Constraints as Nomad's scheduler judges them (hashicorp/nomad scheduler/feasible/feasible.go
// resolveTarget and checkConstraint). Version, semver and ordering operands are not judged here:
// a node is then "undecided", never counted as fitting.
//
// The docker driver's options, which the scheduler does not judge: a client whose docker plugin
// does not allow privileged containers (or host paths as volumes) accepts the allocation and then
// fails the task (hashicorp/nomad drivers/docker/driver.go: "Docker privileged mode is disabled on
// this Nomad agent", "volumes are not enabled; cannot mount host path"). The driver says which it
// allows in its fingerprint (drivers/docker/fingerprint.go buildFingerprint:
// driver.docker.privileged.enabled only with allow_privileged, driver.docker.volumes.enabled only
// with volumes.enabled, both "true"), which the client copies into the node's attributes
// (client/node_updater.go updateNodeFromDriver).

export interface PlacementConstraint {
  LTarget?: string;
  RTarget?: string;
  Operand?: string;
}

export interface PlacementNode {
  ID: string;
  Name: string;
  Datacenter: string;
  NodeClass?: string;
  NodePool: string;
  Status: string;
  SchedulingEligibility: string;
  Attributes?: Record<string, string> | null;
  Meta?: Record<string, string> | null;
}

export interface PlacementTask {
  Name: string;
  Driver?: string;
  Config?: Record<string, unknown> | null;
  Constraints?: PlacementConstraint[] | null;
}

export interface PlacementJob {
  Datacenters?: string[] | null;
  Constraints?: PlacementConstraint[] | null;
  TaskGroups?: Array<{ Constraints?: PlacementConstraint[] | null; Tasks?: PlacementTask[] }>;
}

/** Every constraint of the job, its groups and its tasks (all must hold on one node). */
export function constraintsOf(job: PlacementJob): PlacementConstraint[] {
  const groups = job.TaskGroups ?? [];
  return [...(job.Constraints ?? []), ...groups.flatMap((g) => [...(g.Constraints ?? []), ...(g.Tasks ?? []).flatMap((t) => t.Constraints ?? [])])];
}

/** resolveTarget: a literal, or a node field, attribute or meta value (found or not). */
function resolve(target: string, node: PlacementNode): { value: string; found: boolean } {
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
export function meets(node: PlacementNode, c: PlacementConstraint): boolean | undefined {
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
export function nodeFits(node: PlacementNode, job: PlacementJob): boolean | undefined {
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

/** A docker driver option a client must turn on before a task may use it. */
export type DockerOption = "privileged" | "host-volumes";

export const DOCKER_OPTIONS: Record<DockerOption, { attribute: string; what: string; config: string }> = {
  privileged: {
    attribute: "driver.docker.privileged.enabled",
    what: "privileged containers",
    config: 'plugin "docker" { config { allow_privileged = true } }',
  },
  "host-volumes": {
    attribute: "driver.docker.volumes.enabled",
    what: "host paths as volumes",
    config: 'plugin "docker" { config { volumes { enabled = true } } }',
  },
};

/**
 * The docker options the job's tasks use, each with the first task that uses it: `privileged =
 * true`, and a `volumes` entry whose source is an absolute host path (a relative one is inside
 * the allocation directory, which needs nothing: drivers/docker/driver.go containerBinds).
 */
export function dockerOptionsUsed(job: PlacementJob): Array<{ option: DockerOption; task: string }> {
  const tasks = (job.TaskGroups ?? []).flatMap((g) => g.Tasks ?? []).filter((t) => t.Driver === "docker");
  const used: Array<{ option: DockerOption; task: string }> = [];
  const privileged = tasks.find((t) => t.Config?.privileged === true);
  if (privileged) used.push({ option: "privileged", task: privileged.Name });
  const hostPath = tasks.find((t) => {
    const volumes = t.Config?.volumes;
    return Array.isArray(volumes) && volumes.some((v) => typeof v === "string" && v.startsWith("/"));
  });
  if (hostPath) used.push({ option: "host-volumes", task: hostPath.Name });
  return used;
}

export interface DockerOptionsProblem {
  /** One line: the class, the option and the task that uses it, the pool and how many nodes were looked at. */
  problem: string;
  /** The client configuration that allows it. */
  fix: string;
}

/**
 * Can some node the class's job may be placed on run its docker tasks? `nodes` are the pool's
 * nodes the job fits (or may fit); one problem per option no ready, eligible one of them allows.
 */
export function dockerOptionsProblems(className: string, pool: string, job: PlacementJob, nodes: PlacementNode[]): DockerOptionsProblem[] {
  const ready = nodes.filter((n) => n.Status === "ready" && n.SchedulingEligibility === "eligible");
  return dockerOptionsUsed(job).flatMap(({ option, task }) => {
    const { attribute, what, config } = DOCKER_OPTIONS[option];
    if (ready.some((n) => n.Attributes?.[attribute] === "true")) return [];
    return [
      {
        problem:
          `class ${className}: its runner job's task "${task}" needs ${what}, but no ready node of pool "${pool}" allows them ` +
          `(none of the ${ready.length} ready node(s) it fits has ${attribute})`,
        fix: `set ${config} on the pool's clients and restart them, or change the class's docker job_var`,
      },
    ];
  });
}
