import { defineConfig } from "vitest/config";

// The chaos suite (test/chaos): replicas as OS processes, twins in-process, a few minutes at most.
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.test.ts"],
    testTimeout: 260_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
