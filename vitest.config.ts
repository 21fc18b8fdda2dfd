import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/live/**", "test/chaos/**", "node_modules/**"],
    // Integration tests run real processes (runner stand-ins in containers): room for a loaded machine.
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Most test files wait on child processes and timers, not on the CPU: three at a time on
    // CI's two cores take half the wall time of one at a time.
    maxWorkers: 3,
  },
});
