import { type DestinationStream, type Logger as PinoLogger, pino } from "pino";

export type Logger = PinoLogger;

/**
 * Field paths that may carry a secret. Runner credentials never reach a log call by design;
 * this is the second line of defence for headers and config objects logged while debugging.
 */
const REDACT_PATHS = [
  "token",
  "*.token",
  "secret",
  "*.secret",
  "jitconfig",
  "*.jitconfig",
  "encoded_jit_config",
  "*.encoded_jit_config",
  "registration_token",
  "*.registration_token",
  "remove_token",
  "*.remove_token",
  "wrapToken",
  "*.wrapToken",
  "privateKey",
  "*.privateKey",
  "headers.authorization",
  "headers.Authorization",
  'headers["x-vault-token"]',
  'headers["X-Vault-Token"]',
  'headers["x-nomad-token"]',
  'headers["X-Nomad-Token"]',
  'headers["x-hub-signature-256"]',
];

/**
 * JSON lines to stdout, written synchronously (pino's default): nothing is lost when the process
 * dies, and no libuv thread pool is started for them. An asynchronous destination writes through
 * that pool, whose threads and their malloc arenas add to the idle service's resident memory.
 */
export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      name: "nomad-gha-dispatcher",
      level: opts.level ?? "info",
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination,
  );
}
