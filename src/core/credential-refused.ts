/**
 * The exit code with which the runner job's prestart (jobs/runner/configure-runner.sh) says
 * that Vault refused its single-use wrapping token: spent, expired or made for another runner's
 * secret. Anyone who can read the job can see that token, so this is how a theft shows. 97
 * because the runner's own codes are 0-5 (actions/runner src/Runner.Common/Constants.cs,
 * ReturnCode) and bash uses 1, 2 and 126 and above.
 */
export const CREDENTIAL_REFUSED_EXIT_CODE = 97;

/** How one task of a runner allocation ended, as Nomad's task events tell it. */
export interface TaskExit {
  task: string;
  exitCode: number;
}

/** Whether a runner job's allocations show its credential was refused to it (possible theft). */
export function credentialRefused(exits: TaskExit[]): boolean {
  return exits.some((exit) => exit.exitCode === CREDENTIAL_REFUSED_EXIT_CODE);
}
