// The controller's side of one worker's queue pair (docs/PROTOCOL.md): signs and sends commands,
// authenticates every reply, and turns the reply stream into job outcomes.
//
// One pump per channel reads the reply queue while anyone waits (waitForHello, run, shutdown) and
// dispatches into shared state: the latest hello, the latest goodbye, and per command id its
// outcome and progress. Waiters only look at that state after each pump round, so however many
// callers wait, the queue is polled once. Replies that fail authentication go to
// `<reply queue>-poison` and are otherwise ignored. Nothing secret is logged or kept: sealed
// secrets are built by the caller's `build`, and raw texts are only kept with `keepTexts`.
import { randomUUID } from 'node:crypto';
import type { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { CosmosBackupError, humanMessage } from '../../shared/errors.ts';
import { openReply, signCommand } from '../../shared/protocol/auth.ts';
import { MAX_DEQUEUE_COUNT, MESSAGE_MAX_AGE_SECONDS, WORKER_LOST_AFTER_SECONDS } from '../../shared/protocol/constants.ts';
import { isProtocolError } from '../../shared/protocol/errors.ts';
import { shouldPoison } from '../../shared/protocol/idempotency.ts';
import {
  createCommand, encodeMessage, peekEnvelope, queueNames,
  type CommandBody, type QueueNames, type REJECT_FAULTS, type Reply, type ReplyOf, type Result,
} from '../../shared/protocol/messages.ts';
import { encodePoisonMessage } from '../../shared/protocol/poison.ts';
import { queueError as sharedQueueError, statusOf } from '../../shared/protocol/queue-errors.ts';
import { containsSecretText, redactString } from '../../shared/protocol/redact.ts';

export interface WorkerTimings {
  /** how long waitForHello waits (and run, for a newer hello after a bad-secret failure) */
  helloTimeoutMs: number;
  /** a running job's worker is lost after this long without any reply */
  lostAfterMs: number;
  /** wait between polls of an empty reply queue */
  pollMs: number;
  /** after an abort, how long run waits for the job's ABORTED reply before giving up on it */
  cancelWaitMs: number;
}

const DEFAULT_TIMINGS: WorkerTimings = {
  helloTimeoutMs: 300_000, lostAfterMs: WORKER_LOST_AFTER_SECONDS * 1000, pollMs: 1000, cancelWaitMs: 30_000,
};

export interface JobProgress {
  phase: string;
  bytes: number;
  objects: number;
  bytesStored?: number;
  bytesTotal?: number;
  objectsTotal?: number;
  /** bytes per second over the worker's recent window */
  rate: number;
  etaSeconds: number | null;
}

export type CompletedResult = Result;

export interface WorkerHello {
  publicKey: string;
  version: string;
  commit: string;
  host: unknown;
  pid?: number;
  startedAt: string;
}

/** A job outcome the caller can act on: the worker went silent or away while the job ran; sending it again (to a replacement) is safe. */
export class WorkerLostError extends CosmosBackupError {
  // ErrorCode has no WORKER_LOST: adding a code changes the protocol (messages.ts lists every code), so ABORTED it is.
  constructor(message: string, details: Record<string, unknown>) {
    super('ABORTED', message, { details: { ...details, retryable: true, fault: 'worker-lost' } });
    this.name = 'WorkerLostError';
  }
}

/** The worker did not announce itself in time. */
export class WorkerTimeoutError extends CosmosBackupError {
  constructor(message: string, details: Record<string, unknown>) {
    super('ABORTED', message, { details: { ...details, fault: 'timeout' } });
    this.name = 'WorkerTimeoutError';
  }
}

/** The worker ran the job and reported `failed` (or refused the command with `rejected`). */
export class JobFailedError extends CosmosBackupError {
  readonly retryable: boolean;
  constructor(code: CosmosBackupError['code'], message: string, retryable: boolean, details: Record<string, unknown>) {
    super(code, message, { details: { ...details, retryable } });
    this.name = 'JobFailedError';
    this.retryable = retryable;
  }
}

export interface WorkerChannelOptions {
  queues: QueueServiceClient;
  workerId: string;
  /** the per-worker MAC key, base64 */
  macKey: string;
  /** the agent build the controller deployed; a hello from another is refused */
  expected?: { version: string; commit?: string };
  timings?: Partial<WorkerTimings>;
  /** one redacted line per event */
  log?: (line: string) => void;
  /** keep every raw text sent and received, for texts() */
  keepTexts?: boolean;
}

export interface RunOptions {
  /** the task's command id, when re-sending the same task (e.g. to a replacement worker) */
  commandId?: string;
  onProgress?: (p: JobProgress) => void;
  signal?: AbortSignal;
}

/** What the pump knows about one command id. */
interface JobState {
  completed?: ReplyOf<'completed'>;
  failed?: ReplyOf<'failed'>;
  rejected?: ReplyOf<'rejected'>;
  /** when the current attempt was sent (ms, controller clock) */
  sentAtMs: number;
  progressAtMs: number;
  onProgress?: (p: JobProgress) => void;
}

type Outcome = { kind: 'completed'; reply: ReplyOf<'completed'> } | { kind: 'failed'; reply: ReplyOf<'failed'> } | { kind: 'rejected'; reply: ReplyOf<'rejected'> };
type RejectFault = (typeof REJECT_FAULTS)[number];

/** Re-seal and re-send after a bad-secret failure at most this often. */
const MAX_RESEALS = 2;
const REPLY_VISIBILITY_SECONDS = 30;

const queueError = (what: string, e: unknown) => sharedQueueError(what, e, { auth: 'check the controller\'s queue credentials' });

/** A reason that may travel in a command: one redacted line. */
function plainLine(s: string, max: number): string {
  return redactString(s).replace(/\s+/g, ' ').trim().slice(0, max);
}

export class WorkerChannel {
  readonly workerId: string;
  readonly names: QueueNames;
  private readonly macKey: string;
  private readonly expected: WorkerChannelOptions['expected'];
  private readonly t: WorkerTimings;
  private readonly logFn: (line: string) => void;
  private readonly kept: string[] | undefined;
  private readonly cmdQ: QueueClient;
  private readonly replyQ: QueueClient;
  private readonly cmdPoisonQ: QueueClient;
  private readonly replyPoisonQ: QueueClient;
  private replyPoisonReady = false;

  private hello: ReplyOf<'hello'> | undefined;
  private goodbye: { reply: ReplyOf<'goodbye'>; receivedAtMs: number } | undefined;
  private readonly jobs = new Map<string, JobState>();
  private lastSeenMs: number | null = null;

  // The pump: runs while users > 0; waiters are resolved after every round.
  private users = 0;
  private pumping: Promise<void> | undefined;
  private roundWaiters: Array<() => void> = [];
  private wakePump: (() => void) | undefined;
  private receiveFailing = false;

  constructor(opts: WorkerChannelOptions) {
    this.workerId = opts.workerId;
    this.names = queueNames(opts.workerId);
    this.macKey = opts.macKey;
    this.expected = opts.expected;
    this.t = { ...DEFAULT_TIMINGS, ...opts.timings };
    this.logFn = opts.log ?? (() => {});
    this.kept = opts.keepTexts ? [] : undefined;
    this.cmdQ = opts.queues.getQueueClient(this.names.commands);
    this.replyQ = opts.queues.getQueueClient(this.names.replies);
    this.cmdPoisonQ = opts.queues.getQueueClient(this.names.commandsPoison);
    this.replyPoisonQ = opts.queues.getQueueClient(this.names.repliesPoison);
  }

  private log(line: string): void {
    try {
      this.logFn(redactString(`worker ${this.workerId}: ${line}`));
    } catch { /* a failing logger must not break the protocol */ }
  }

  private keep(text: string): void {
    this.kept?.push(text);
  }

  /** Every raw text sent and received (only with keepTexts). */
  texts(): string[] {
    return this.kept ? [...this.kept] : [];
  }

  /** Last time any authentic reply arrived. */
  lastSeen(): Date | null {
    return this.lastSeenMs === null ? null : new Date(this.lastSeenMs);
  }

  /** The worker's queues, its poison queue included: its SAS may add messages there, not create it. */
  async createQueues(): Promise<void> {
    for (const q of [this.cmdQ, this.replyQ, this.cmdPoisonQ]) {
      try {
        await q.createIfNotExists();
      } catch (e) {
        throw queueError(`creating queue ${q.name}`, e);
      }
    }
  }

  async deleteQueues(): Promise<void> {
    for (const q of [this.cmdQ, this.replyQ, this.cmdPoisonQ, this.replyPoisonQ]) {
      try {
        await q.deleteIfExists();
      } catch (e) {
        if (statusOf(e) !== 404) throw queueError(`deleting queue ${q.name}`, e);
      }
    }
    this.replyPoisonReady = false;
  }

  // ---------------------------------------------------------------- hello

  /** Waits for an authentic hello (the latest by sentAt) from the expected agent build. */
  async waitForHello(signal?: AbortSignal): Promise<WorkerHello> {
    const deadline = Date.now() + this.t.helloTimeoutMs;
    // One full round first, so that the latest hello on the queue is the one returned.
    const h = await this.until(() => {
      if (this.hello) return this.acceptHello(this.hello);
      if (Date.now() >= deadline) throw this.helloTimeout();
      return undefined;
    }, signal, true);
    return helloFacts(h);
  }

  private helloTimeout(): WorkerTimeoutError {
    return new WorkerTimeoutError(`worker ${this.workerId} did not say hello within ${Math.round(this.t.helloTimeoutMs / 1000)} s (it did not start, or cannot reach queue ${this.names.replies})`,
      { workerId: this.workerId, timeoutMs: this.t.helloTimeoutMs });
  }

  /** The hello when it comes from the agent build the controller deployed; throws otherwise. */
  private acceptHello(h: ReplyOf<'hello'>): ReplyOf<'hello'> {
    const e = this.expected;
    if (e && (h.version !== e.version || (e.commit !== undefined && h.commit !== e.commit))) {
      const want = e.commit === undefined ? e.version : `${e.version} (${e.commit})`;
      throw new CosmosBackupError('UNSUPPORTED_FORMAT',
        `refusing worker ${this.workerId}: it runs agent ${h.version} (${h.commit}), but the controller deployed ${want}`,
        { details: { workerId: this.workerId, version: h.version, commit: h.commit, expectedVersion: e.version, expectedCommit: e.commit ?? null } });
    }
    return h;
  }

  // ---------------------------------------------------------------- jobs

  /**
   * Sends a job command and waits for its outcome. `build(commandId, publicKey)` seals the
   * command's secrets to the worker's key, bound to commandId (sealField).
   */
  async run(build: (commandId: string, publicKey: string) => CommandBody, opts: RunOptions = {}): Promise<CompletedResult> {
    const { signal } = opts;
    signal?.throwIfAborted();
    const commandId = opts.commandId ?? randomUUID();
    const known = this.jobs.get(commandId);
    // Already completed (a late `completed` superseded a retryable failure): do not run it twice.
    if (known?.completed) return known.completed.result;
    let hello = this.hello ? this.acceptHello(this.hello) : await this.helloReply(signal);
    const job: JobState = known ?? { sentAtMs: Date.now(), progressAtMs: 0 };
    this.jobs.set(commandId, job);
    job.onProgress = opts.onProgress;
    try {
      for (let reseals = 0; ; reseals++) {
        job.failed = undefined;
        job.rejected = undefined;
        const body = build(commandId, hello.publicKey);
        job.sentAtMs = Date.now();
        await this.send(body, commandId);
        this.log(`sent ${body.kind} ${commandId}${reseals ? ` again, re-sealed to the worker's new key (${reseals})` : ''}`);
        const outcome = await this.awaitOutcome(commandId, job, signal);
        if (outcome.kind === 'completed') return outcome.reply.result;
        if (outcome.kind === 'rejected') {
          const r = outcome.reply;
          throw new JobFailedError(r.code, `worker ${this.workerId} refused command ${commandId} (${r.fault}): ${r.message}`, false, { workerId: this.workerId, commandId, fault: r.fault });
        }
        const f = outcome.reply;
        const failure = new JobFailedError(f.code, f.message, f.retryable, { ...f.details, workerId: this.workerId, commandId });
        if (!(f.code === 'UNAUTHENTICATED' && f.details?.fault === 'bad-secret')) throw failure;
        if (reseals >= MAX_RESEALS) throw failure;
        // Sealed to a key the worker no longer has (it restarted without its state): re-seal to its newer hello.
        const used = hello;
        hello = await this.newerHello(used, signal).catch((e: unknown) => {
          if (e instanceof WorkerTimeoutError) throw new JobFailedError(f.code, `${f.message}; no newer hello from worker ${this.workerId} within ${Math.round(this.t.helloTimeoutMs / 1000)} s to re-seal to`, true, failure.details);
          throw e;
        });
      }
    } finally {
      job.onProgress = undefined;
    }
  }

  private async helloReply(signal?: AbortSignal): Promise<ReplyOf<'hello'>> {
    await this.waitForHello(signal);
    return this.hello!;
  }

  private newerHello(than: ReplyOf<'hello'>, signal?: AbortSignal): Promise<ReplyOf<'hello'>> {
    const deadline = Date.now() + this.t.helloTimeoutMs;
    return this.until(() => {
      const h = this.hello;
      if (h && Date.parse(h.sentAt) > Date.parse(than.sentAt)) return this.acceptHello(h);
      if (Date.now() >= deadline) throw this.helloTimeout();
      return undefined;
    }, signal);
  }

  /** The job's outcome; on abort, cancels it, waits briefly for its end and rejects with the reason. */
  private async awaitOutcome(commandId: string, job: JobState, signal?: AbortSignal): Promise<Outcome> {
    try {
      return await this.until(() => this.outcomeOf(commandId, job), signal);
    } catch (e) {
      if (!signal?.aborted) throw e;
      await this.cancel(commandId, job, signal.reason);
      throw signal.reason;
    }
  }

  /** Completed, failed or rejected; throws WorkerLostError when the worker went silent or away. */
  private outcomeOf(commandId: string, job: JobState): Outcome | undefined {
    if (job.completed) return { kind: 'completed', reply: job.completed };
    if (job.failed) return { kind: 'failed', reply: job.failed };
    if (job.rejected) return { kind: 'rejected', reply: job.rejected };
    const now = Date.now();
    const silentMs = now - Math.max(this.lastSeenMs ?? 0, job.sentAtMs);
    if (silentMs > this.t.lostAfterMs) {
      this.log(`lost while running ${commandId}: no reply for ${Math.round(silentMs / 1000)} s`);
      throw new WorkerLostError(`worker ${this.workerId} is lost: no reply for ${Math.round(silentMs / 1000)} s while command ${commandId} ran`,
        { workerId: this.workerId, commandId, silentMs });
    }
    const bye = this.goodbye;
    // A goodbye counts when it came after the command was sent, from the process of the latest hello.
    // The job's own failed/completed is sent before it but may be read after it: allow a few rounds.
    if (bye && bye.receivedAtMs >= job.sentAtMs && (!this.hello || Date.parse(bye.reply.sentAt) >= Date.parse(this.hello.sentAt))
      && now - bye.receivedAtMs > Math.min(this.t.lostAfterMs, Math.max(3 * this.t.pollMs, 3000))) {
      this.log(`said goodbye (${bye.reply.reason}) while running ${commandId}`);
      throw new WorkerLostError(`worker ${this.workerId} stopped (${bye.reply.reason}) while command ${commandId} ran`,
        { workerId: this.workerId, commandId, goodbye: bye.reply.reason });
    }
    return undefined;
  }

  /** Sends `cancel` and waits (bounded) for the job to end; never throws. */
  private async cancel(commandId: string, job: JobState, reason: unknown): Promise<void> {
    const why = plainLine(`cancelled: ${humanMessage(reason)}`, 500);
    try {
      await this.send({ kind: 'cancel', commandId, reason: why }, randomUUID());
      this.log(`sent cancel for ${commandId}`);
    } catch (e) {
      this.log(`could not send cancel for ${commandId}: ${humanMessage(e)}`);
      return;
    }
    const deadline = Date.now() + this.t.cancelWaitMs;
    try {
      const end = await this.until(() => {
        const o = this.outcomeOf(commandId, job);
        if (o) return o.kind === 'failed' ? `${o.kind} ${o.reply.code}` : o.kind;
        return Date.now() >= deadline ? 'no reply' : undefined;
      });
      this.log(`after cancel, ${commandId} ended: ${end}`);
    } catch (e) {
      this.log(`after cancel, ${commandId}: ${humanMessage(e)}`);
    }
  }

  // ---------------------------------------------------------------- shutdown

  /** Sends `shutdown` and waits (bounded) for goodbye; never throws. */
  async shutdown(reason: string, opts: { abortRunning?: boolean; waitMs?: number } = {}): Promise<void> {
    const sentAtMs = Date.now();
    const deadline = sentAtMs + (opts.waitMs ?? 60_000);
    try {
      await this.send({ kind: 'shutdown', reason: plainLine(reason, 500), abortRunning: opts.abortRunning ?? false }, randomUUID());
      const said = await this.until(() => {
        if (this.goodbye && this.goodbye.receivedAtMs >= sentAtMs) return true;
        return Date.now() >= deadline ? false : undefined;
      });
      this.log(said ? 'stopped after shutdown' : `no goodbye within ${Math.round((opts.waitMs ?? 60_000) / 1000)} s of shutdown`);
    } catch (e) {
      this.log(`shutdown: ${humanMessage(e)}`);
    }
  }

  // ---------------------------------------------------------------- sending

  private async send(body: CommandBody, id: string): Promise<void> {
    const text = encodeMessage(signCommand(createCommand(body, { workerId: this.workerId, id }), this.macKey));
    this.keep(text);
    try {
      // The TTL matches the replay window: the worker refuses anything older anyway.
      await this.cmdQ.sendMessage(text, { messageTimeToLive: MESSAGE_MAX_AGE_SECONDS });
    } catch (e) {
      throw queueError(`sending ${body.kind} ${id}`, e);
    }
  }

  // ---------------------------------------------------------------- the pump

  /** Polls `check` after every pump round until it returns a value; `check` may throw to end the wait. */
  private async until<T>(check: () => T | undefined, signal?: AbortSignal, roundFirst = false): Promise<T> {
    this.acquire();
    try {
      if (roundFirst) await this.nextRound(signal);
      for (;;) {
        signal?.throwIfAborted();
        const v = check();
        if (v !== undefined) return v;
        await this.nextRound(signal);
      }
    } finally {
      this.release();
    }
  }

  private nextRound(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.roundWaiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private acquire(): void {
    this.users++;
    if (!this.pumping) this.startPump();
  }

  private startPump(): void {
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      // Someone started waiting while the loop was ending.
      if (this.users > 0) this.startPump();
    });
  }

  private release(): void {
    this.users--;
    if (this.users === 0) this.wakePump?.();
  }

  private async pump(): Promise<void> {
    while (this.users > 0) {
      let full = false;
      try {
        full = await this.round();
      } catch (e) {
        // Unexpected (a bug, or a delete that failed): the messages come back after their visibility timeout.
        this.log(`reading replies failed: ${humanMessage(e)}`);
      }
      const waiters = this.roundWaiters;
      this.roundWaiters = [];
      for (const w of waiters) w();
      if (!full && this.users > 0) await this.sleep(this.receiveFailing ? Math.max(this.t.pollMs, 1000) : this.t.pollMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakePump = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakePump = done;
    });
  }

  /** One receive of up to 32 replies, each handled and deleted. True when the batch was full. */
  private async round(): Promise<boolean> {
    let items;
    try {
      items = (await this.replyQ.receiveMessages({ numberOfMessages: 32, visibilityTimeout: REPLY_VISIBILITY_SECONDS })).receivedMessageItems;
    } catch (e) {
      // Logged once per outage; while it lasts no reply arrives, so a running job's worker counts as lost in time.
      if (!this.receiveFailing) this.log(`cannot read replies: ${humanMessage(queueError(`receiving from ${this.names.replies}`, e))}`);
      this.receiveFailing = true;
      return false;
    }
    if (this.receiveFailing) this.log('reading replies again');
    this.receiveFailing = false;
    for (const m of items) await this.handle(m);
    return items.length === 32;
  }

  private async handle(m: { messageId: string; popReceipt: string; dequeueCount: number; messageText: string }): Promise<void> {
    this.keep(m.messageText);
    let reply: Reply;
    try {
      if (shouldPoison(m.dequeueCount, MAX_DEQUEUE_COUNT)) {
        await this.poison(m, 'poison', `delivered ${m.dequeueCount} times without being handled (limit ${MAX_DEQUEUE_COUNT})`);
        return;
      }
      reply = openReply(m.messageText, this.macKey, { workerId: this.workerId });
    } catch (e) {
      await this.poison(m, isProtocolError(e) ? e.fault : 'malformed', humanMessage(e));
      return;
    }
    this.dispatch(reply);
    await this.deleteReply(m.messageId, m.popReceipt);
  }

  /** Sets an unauthentic or undeliverable reply aside on `<reply queue>-poison` (docs/PROTOCOL.md "Poison messages"). */
  private async poison(m: { messageId: string; popReceipt: string; dequeueCount: number; messageText: string }, fault: RejectFault, reason: string): Promise<void> {
    const claimed = peekEnvelope(m.messageText).id;
    const claimedId = claimed && !containsSecretText(claimed) ? claimed : undefined;
    this.log(`set aside a reply (message ${m.messageId}${claimedId ? `, claims id ${claimedId}` : ''}) on ${this.names.repliesPoison}: ${fault}: ${plainLine(reason, 300)}`);
    const text = encodePoisonMessage({
      queue: this.names.replies, messageId: m.messageId.slice(0, 128), dequeueCount: m.dequeueCount, at: new Date().toISOString(),
      fault, reason: plainLine(reason, 1000) || fault, ...(claimedId ? { claimedId } : {}),
    }, m.messageText);
    try {
      if (!this.replyPoisonReady) {
        await this.replyPoisonQ.createIfNotExists();
        this.replyPoisonReady = true;
      }
      // Kept until someone looks at it.
      await this.replyPoisonQ.sendMessage(text, { messageTimeToLive: -1 });
    } catch (e) {
      throw queueError(`setting a reply aside on ${this.names.repliesPoison}`, e);
    }
    await this.deleteReply(m.messageId, m.popReceipt);
  }

  private async deleteReply(messageId: string, popReceipt: string): Promise<void> {
    try {
      await this.replyQ.deleteMessage(messageId, popReceipt);
    } catch (e) {
      // Not found: it expired or was received again; the dispatch is idempotent either way.
      if (statusOf(e) !== 404) throw queueError(`deleting a reply from ${this.names.replies}`, e);
    }
  }

  /** Folds one authentic reply into the channel's state. Idempotent: replies come at least once, in any order. */
  private dispatch(r: Reply): void {
    const now = Date.now();
    this.lastSeenMs = now;
    switch (r.kind) {
      case 'hello':
        if (!this.hello || Date.parse(r.sentAt) > Date.parse(this.hello.sentAt)) {
          this.hello = r;
          this.log(`hello: agent ${r.version} (${r.commit}) on ${r.host.hostname}${r.pid ? ` pid ${r.pid}` : ''}`);
        }
        return;
      case 'goodbye':
        if (!this.goodbye || Date.parse(r.sentAt) > Date.parse(this.goodbye.reply.sentAt)) {
          this.goodbye = { reply: r, receivedAtMs: now };
          this.log(`goodbye (${r.reason})${r.abortedCommandId ? `, aborted ${r.abortedCommandId}` : ''}`);
        }
        return;
      case 'heartbeat':
        return;
      case 'accepted':
        this.log(`accepted ${r.commandKind} ${r.commandId} (attempt ${r.attempt})`);
        return;
      case 'progress': {
        const job = this.jobs.get(r.commandId);
        const at = Date.parse(r.sentAt);
        if (!job || at <= job.progressAtMs) return;
        job.progressAtMs = at;
        const { phase, bytes, objects, bytesStored, bytesTotal, objectsTotal, rate, etaSeconds } = r;
        try {
          job.onProgress?.({ phase, bytes, objects, rate, etaSeconds, ...(bytesStored === undefined ? {} : { bytesStored }), ...(bytesTotal === undefined ? {} : { bytesTotal }), ...(objectsTotal === undefined ? {} : { objectsTotal }) });
        } catch (e) {
          this.log(`progress callback failed: ${humanMessage(e)}`);
        }
        return;
      }
      case 'completed': {
        const job = this.job(r.commandId);
        if (job.completed) {
          this.log(`ignored a second completed for ${r.commandId}`);
          return;
        }
        job.completed = r;
        this.log(`completed ${r.commandId}${job.failed ? ' (supersedes its failure)' : ''}`);
        return;
      }
      case 'failed': {
        const job = this.job(r.commandId);
        if (job.completed || (job.failed && Date.parse(job.failed.sentAt) >= Date.parse(r.sentAt))) return;
        job.failed = r;
        this.log(`failed ${r.commandId}: ${r.code} ${r.message}${r.retryable ? ' (retryable)' : ''}`);
        return;
      }
      case 'rejected':
        this.log(`worker rejected a command${r.claimedId ? ` claiming id ${r.claimedId}` : ''}: ${r.fault}: ${r.message}`);
        if (r.claimedId && this.jobs.has(r.claimedId)) {
          const job = this.job(r.claimedId);
          if (!job.completed && !job.failed) job.rejected = r;
        }
        return;
    }
  }

  private job(commandId: string): JobState {
    let j = this.jobs.get(commandId);
    if (!j) {
      // Outcomes of commands no run() waits for (yet) are kept too: a later run() of that id uses them.
      j = { sentAtMs: 0, progressAtMs: 0 };
      this.jobs.set(commandId, j);
    }
    return j;
  }
}

function helloFacts(h: ReplyOf<'hello'>): WorkerHello {
  return { publicKey: h.publicKey, version: h.version, commit: h.commit, host: h.host, startedAt: h.startedAt, ...(h.pid === undefined ? {} : { pid: h.pid }) };
}
