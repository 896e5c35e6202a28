// Numbers both sides must agree on. docs/PROTOCOL.md explains each one.

/** The only envelope version this build speaks. */
export const PROTOCOL_VERSION = 1;

/** Azure Queue Storage accepts 64 KiB of message text; we keep 4 KiB of margin. */
export const MAX_MESSAGE_TEXT_BYTES = 60 * 1024;

/** Visibility timeout a worker receives commands with, and re-applies while it works. */
export const VISIBILITY_TIMEOUT_SECONDS = 120;
/** How often a worker renews visibility of the message it works on (a third of the timeout). */
export const VISIBILITY_RENEW_SECONDS = 40;

/** Worker heartbeat period; the controller declares a worker lost after WORKER_LOST_AFTER_SECONDS of silence. */
export const HEARTBEAT_INTERVAL_SECONDS = 30;
export const WORKER_LOST_AFTER_SECONDS = 120;
/** Progress replies are sent at most this often, to bound queue transactions. */
export const PROGRESS_MIN_INTERVAL_SECONDS = 5;

/** A message delivered more than this many times goes to `<queue>-poison`. */
export const MAX_DEQUEUE_COUNT = 5;

/** Replay window: a message whose sentAt is older is rejected. Commands are also sent with this TTL. */
export const MESSAGE_MAX_AGE_SECONDS = 24 * 60 * 60;
/** Clock skew tolerated for a sentAt in the future. */
export const MAX_CLOCK_SKEW_SECONDS = 5 * 60;
/** How long the worker remembers finished command ids; must exceed the replay window. */
export const LEDGER_RETENTION_SECONDS = MESSAGE_MAX_AGE_SECONDS + MAX_CLOCK_SKEW_SECONDS + 60 * 60;
