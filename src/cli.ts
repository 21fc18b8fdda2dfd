#!/usr/bin/env node
import { ConfigError, loadConfig } from "./config.js";
import { errorMessage } from "./core/errors.js";
import { createLogger } from "./log.js";
import { StartupError, startService } from "./service.js";
import { serviceVersion } from "./version.js";

const USAGE = `usage: nomad-gha-dispatcher [serve|doctor|status [URL]|version|help]

  serve    run the service (default)
  doctor   check every dependency and print a checklist with fixes
  status   what a running service waits for: health, runners, waiting jobs and why, GitHub budget,
           last failures (from URL, default http://HOST:METRICS_PORT/status.json)
  version  print the version (also --version, -v)

Configuration comes from the environment; see the README for every variable.`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? "serve";
  if (command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return 0;
  }
  if (command === "status") {
    const { defaultStatusUrl, runStatus } = await import("./status-command.js");
    return runStatus(
      argv[1] ?? defaultStatusUrl(process.env),
      (text) => process.stdout.write(text),
      (line) => console.error(line),
    );
  }
  if (command === "version" || command === "--version" || command === "-v") {
    console.log(serviceVersion());
    return 0;
  }
  if (command !== "serve" && command !== "doctor") {
    console.error(`unknown command "${command}"\n${USAGE}`);
    return 2;
  }

  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const problem of err.problems) console.error(`config error: ${problem}`);
      return 2;
    }
    throw err;
  }

  if (command === "doctor") {
    const { runDoctor } = await import("./doctor.js");
    return runDoctor(config);
  }

  const log = createLogger({ level: config.logLevel });
  let service;
  try {
    service = await startService(config, log);
  } catch (err) {
    // Printed once, on stderr beside any config error, not also as a log line.
    if (err instanceof StartupError) {
      console.error(`startup error: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const running = service;
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, "shutting down: finishing webhooks in flight");
      running.close().then(resolve, (err: unknown) => {
        log.error({ err: errorMessage(err) }, "shutdown failed");
        resolve();
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
