import { DependencyError, errorMessage } from "./core/errors.js";
import { constraintsOf, type DockerOptionsProblem, dockerOptionsProblems, dockerOptionsUsed, meets, nodeFits } from "./core/placement.js";
import type { CheckOutcome } from "./doctor.js";
import type { NomadClient } from "./nomad/client.js";
import type { NomadJob, NomadNode } from "./nomad/types.js";

type NodeReader = Pick<NomadClient, "nodePool" | "nodePoolNodes" | "readNode">;

// doctor and start-up: can a class's runner job be placed, and run, at all? Its node pool must
// exist, and some ready, eligible node of it must be in one of its datacenters, meet its
// constraints and allow the docker options its tasks use; the decisions are core/placement's.

export { constraintsOf, meets, nodeFits };

/** How many nodes a look reads at most: enough to find fitting ones, bounded on big clusters. */
const NODES_READ = 25;

/** The pool's ready, eligible nodes, the first NODES_READ of them read in full. */
async function readyNodes(nomad: NodeReader, poolName: string): Promise<{ all: number; ready: number; read: NomadNode[] }> {
  const nodes = await nomad.nodePoolNodes(poolName);
  const ready = nodes.filter((n) => n.Status === "ready" && n.SchedulingEligibility === "eligible");
  const read = await Promise.all(ready.slice(0, NODES_READ).map((n) => nomad.readNode(n.ID)));
  return { all: nodes.length, ready: ready.length, read: read.filter((n) => n !== undefined) };
}

/** doctor: the class's node pool exists and has nodes its job can be placed on and its docker tasks run on. */
export async function checkPlacement(nomad: NodeReader, job: NomadJob, className: string): Promise<CheckOutcome> {
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
  let nodes: Awaited<ReturnType<typeof readyNodes>>;
  try {
    nodes = await readyNodes(nomad, poolName);
  } catch (err) {
    return cannotTell(err, `the nodes of pool ${poolName}`);
  }
  const { read } = nodes;
  if (nodes.ready === 0) return { level: "fail", detail: `node pool "${poolName}" has no ready, eligible node (${nodes.all} in all)` };
  const verdicts = read.map((n) => nodeFits(n, job));
  const fit = verdicts.filter((v) => v === true).length;
  const undecided = verdicts.filter((v) => v === undefined).length;
  const constraints = constraintsOf(job).map((c) => `${c.LTarget ?? ""} ${c.Operand ?? "="} ${c.RTarget ?? ""}`.trim());
  const what = `pool "${poolName}"${constraints.length > 0 ? `, constraints ${constraints.join("; ")}` : ""}`;
  const of = `${read.length} of its ${nodes.ready} ready node(s) read`;
  if (fit === 0 && undecided === 0)
    return { level: "fail", detail: `no node fits (${what}; ${of})`, fix: "add nodes that meet the constraints to the pool, or change the class's job_vars" };
  const [docker] = dockerOptionsProblems(
    className,
    poolName,
    job,
    read.filter((_, i) => verdicts[i] !== false),
  );
  if (docker) return { level: "fail", detail: docker.problem, fix: docker.fix };
  if (fit > 0) return { level: "ok", detail: `${fit} node(s) fit (${what}; ${of})` };
  return { level: "warn", detail: `no node certainly fits, ${undecided} undecided: doctor does not judge some operands (${what}; ${of})` };
}

/**
 * Start-up: the docker options of the class's job (privileged, host volumes) that no node of its
 * pool allows, as problems; nothing to read when the job uses none. `unchecked` says why the
 * nodes could not be read (a token without node read: the least-privilege tokens have none).
 */
export async function dockerOptionsAtStart(
  nomad: NodeReader,
  job: NomadJob,
  className: string,
): Promise<{ problems: DockerOptionsProblem[]; unchecked?: string }> {
  if (dockerOptionsUsed(job).length === 0) return { problems: [] };
  const poolName = job.NodePool || "default";
  let nodes: NomadNode[];
  try {
    nodes = (await nomad.nodePool(poolName)) ? (await readyNodes(nomad, poolName)).read : [];
  } catch (err) {
    if (err instanceof DependencyError && err.status === 403) return { problems: [], unchecked: `the Nomad token may not read the nodes of pool ${poolName}` };
    throw err;
  }
  return {
    problems: dockerOptionsProblems(
      className,
      poolName,
      job,
      nodes.filter((n) => nodeFits(n, job) !== false),
    ),
  };
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
