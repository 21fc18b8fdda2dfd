import { onTestFinished } from "vitest";
import { startWorld, type World, type WorldOptions } from "./world.js";

/** startWorld inside a test: the world is closed when the test ends, however it ends. */
export async function startTestWorld(opts: WorldOptions = {}): Promise<World> {
  const world = await startWorld(opts);
  onTestFinished(() => world.close());
  return world;
}
