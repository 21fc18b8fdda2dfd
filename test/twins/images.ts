// The images the Nomad twin's client can "pull": the official runner image, at any version tag,
// as the stand-in in runner-image.ts. Anything else is not in the registry (the task fails with
// a driver failure, as a pull of an unknown image does).

import type { TwinImage } from "./contract.js";
import { actionsRunnerImage } from "./runner-image.js";

const RUNNER_IMAGE = /^ghcr\.io\/actions\/actions-runner:(\d+\.\d+\.\d+)$/;

export function twinImage(name: string): TwinImage | undefined {
  const runner = RUNNER_IMAGE.exec(name);
  return runner ? actionsRunnerImage(runner[1]!) : undefined;
}
