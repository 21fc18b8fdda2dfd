import { errorMessage } from "./core/errors.js";
import { renderStatusText, type StatusReport } from "./core/status.js";

/**
 * Where `status` asks when no URL is given: the operators' listener of a service started with the
 * same environment (HOST, METRICS_PORT), as `nomad alloc exec` into its task would have it.
 */
export function defaultStatusUrl(env: NodeJS.ProcessEnv): string {
  const host = env.HOST && env.HOST !== "0.0.0.0" && env.HOST !== "::" ? env.HOST : "127.0.0.1";
  const port = env.METRICS_PORT && env.METRICS_PORT !== "off" ? env.METRICS_PORT : "9102";
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}/status.json`;
}

/** `nomad-gha-dispatcher status [URL]`: 0 ready, 1 not ready, 2 no answer. */
export async function runStatus(url: string, out: (text: string) => void, err: (line: string) => void): Promise<number> {
  let report: StatusReport;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    report = (await res.json()) as StatusReport;
  } catch (e) {
    err(`status: no answer from ${url}: ${errorMessage(e)} (is the service running, with METRICS_PORT on?)`);
    return 2;
  }
  out(renderStatusText(report));
  return report.ready ? 0 : 1;
}
