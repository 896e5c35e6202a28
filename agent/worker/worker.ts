// The worker: a loop over its command queue that runs the protocol of docs/PROTOCOL.md.
//
// Lifecycle (WorkerState):
//   starting  → loads its key pair and ledger, sends `hello`
//   idle      → polls the command queue; exits by itself after the idle timeout
//   running   → one job runs; the loop keeps polling so that control commands (cancel, shutdown)
//               act at once and other jobs are put off (one job at a time)
//   draining  → SIGTERM, `shutdown` or the idle timeout: no new commands; the running job is
//               aborted (or finished, for `shutdown` without abortRunning); then `goodbye`
//   stopped   → run() has resolved; the process exits 0
//
// Every received message is authenticated (MAC, worker id, age) and schema-checked before anything
// runs; a refused one goes to `<queue>-poison` with its reason and is reported as `rejected`.
// Delivery is at least once: the ledger in the state directory decides what a delivery means.
import { availableParallelism, hostname, release, totalmem } from 'node:os';
import type { KeyObject } from 'node:crypto';
import { CosmosBackupError, humanMessage } from '../../shared/errors.ts';
import { openCommand, openCommandSecrets, signReply } from '../../shared/protocol/auth.ts';
import { isProtocolError } from '../../shared/protocol/errors.ts';
import { decideDelivery, finishEntry, startEntry, type FinalOutcome, type LedgerEntry } from '../../shared/protocol/idempotency.ts';
import {
  createReply, encodeMessage, isControlKind, peekEnvelope,
  type Command, type CommandOf, type ErrorCodeSchema, type HostFacts, type ReplyBody, type REJECT_FAULTS,
} from '../../shared/protocol/messages.ts';
import { encodePoisonMessage } from '../../shared/protocol/poison.ts';
import { containsSecretText, redactString } from '../../shared/protocol/redact.ts';
import { runJob, type JobCommand } from './jobs.ts';
import type { WorkerLog } from './log.ts';
import { ProgressTracker, type ProgressSample } from './progress.ts';
import type { ReceivedMessage, WorkerQueues } from './queues.ts';
import { ensureStateDir, FileLedger, loadOrCreateKeyPair } from './state.ts';
import type * as z from 'zod';

export type WorkerState = 'starting' | 'idle' | 'running' | 'draining' | 'stopped';
export type GoodbyeReason = 'sigterm' | 'idle-timeout' | 'shutdown' | 'fatal';
type ErrorCode = z.infer<typeof ErrorCodeSchema>;
type RejectFault = (typeof REJECT_FAULTS)[number];

export interface WorkerOptions {
  workerId: string;
  /** the per-worker MAC key, base64 (never logged) */
  macKey: string;
  stateDir: string;
  queues: WorkerQueues;
  log: WorkerLog;
  version: string;
  commit: string;
  /** exit after this long without a job; 0 = never */
  idleTimeoutMs: number;
  /** deliveries beyond this count go to the poison queue */
  maxDequeue: number;
  /** visibility timeout of received commands, re-applied while a job runs */
  visibilitySeconds: number;
  renewMs: number;
  heartbeatMs: number;
  progressMs: number;
  /** wait between polls of an empty queue */
  pollMs: number;
  /** how long a job that arrives while another runs is hidden */
  deferSeconds: number;
  /**
   * How long an aborted job may take to stop before the worker gives up waiting for it and
   * reports it aborted anyway. Its storage is already refused (access.ts), so nothing it still
   * does can become visible; this bounds engines that do not notice the abort promptly.
   */
  abortGraceMs: number;
}

interface RunningJob {
  command: JobCommand;
  messageId: string;
  /** the latest pop receipt: every visibility update returns a new one */
  popReceipt: string;
  entry: LedgerEntry;
  abort: AbortController;
  abortReason?: 'sigterm' | 'shutdown' | 'cancel';
  done?: Promise<void>;
}

/** Codes for which running the same command again may succeed. */
const RETRYABLE: ReadonlySet<string> = new Set(['STORAGE_UNAVAILABLE', 'REPO_LOCKED', 'DATABASE_UNREACHABLE']);

function oneLine(s: string): string {
  const line = redactString(s).replace(/\s+/g, ' ').trim().slice(0, 2000);
  return line || 'failed without a message';
}

export function hostFacts(): HostFacts {
  const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  return {
    hostname: hostname().slice(0, 255) || 'unknown', cpus: Math.max(1, availableParallelism()), memoryBytes: totalmem(),
    os: { platform: process.platform, release: release().slice(0, 128), arch: process.arch },
    ...(glibc ? { glibc } : {}),
  };
}

/** The outcome to record and report for a job that threw. */
export function failureOutcome(e: unknown, abortReason: RunningJob['abortReason']): Extract<FinalOutcome, { kind: 'failed' }> {
  if (abortReason) {
    // Cancelled on purpose: final. Stopped with the worker: the controller (or the restarted worker) runs it again.
    return { kind: 'failed', code: 'ABORTED', message: oneLine(`the job was aborted (${abortReason})`), retryable: abortReason !== 'cancel' };
  }
  const code: ErrorCode = e instanceof CosmosBackupError ? e.code : 'INTERNAL';
  const transient = e instanceof CosmosBackupError && e.details.transient === true;
  const badSecret = isProtocolError(e, 'bad-secret');
  return {
    kind: 'failed', code, message: oneLine(humanMessage(e)),
    retryable: RETRYABLE.has(code) || transient || badSecret,
    ...(isProtocolError(e) ? { details: { fault: e.fault } } : {}),
  };
}

export class Worker {
  state: WorkerState = 'starting';
  private readonly o: WorkerOptions;
  private readonly log: WorkerLog;
  private privateKey!: KeyObject;
  private publicKey!: string;
  private ledger!: FileLedger;
  private job: RunningJob | undefined;
  private stopRequest: { reason: GoodbyeReason; abortRunning: boolean } | undefined;
  private lastActivity = Date.now();
  private readonly startedAt = new Date();
  private wake: (() => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(o: WorkerOptions) {
    this.o = o;
    this.log = o.log;
  }

  private setState(s: WorkerState): void {
    if (this.state !== s) this.log.info({ from: this.state, to: s }, `worker ${s}`);
    this.state = s;
  }

  /** Stop taking commands; abort the running job or let it finish; then `goodbye`. Safe to call repeatedly. */
  requestStop(reason: GoodbyeReason, abortRunning: boolean): void {
    if (!this.stopRequest) this.stopRequest = { reason, abortRunning };
    else if (abortRunning) this.stopRequest.abortRunning = true;
    if (this.state === 'idle' || this.state === 'running') this.setState('draining');
    if (abortRunning && this.job && !this.job.abort.signal.aborted) {
      this.job.abortReason = reason === 'sigterm' ? 'sigterm' : 'shutdown';
      this.job.abort.abort(new CosmosBackupError('ABORTED', `worker stopping (${reason})`));
    }
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() { clearTimeout(t); resolve(); }
      this.wake = done;
    }).then(() => { this.wake = undefined; });
  }

  private async send(body: ReplyBody): Promise<void> {
    const msg = signReply(createReply(body, { workerId: this.o.workerId }), this.o.macKey);
    await this.o.queues.sendReply(encodeMessage(msg));
  }

  /** Sends without failing the caller (progress, heartbeats): a lost one is replaced by the next. */
  private trySend(body: ReplyBody): void {
    this.send(body).catch((e: unknown) => this.log.warn({ err: e, kind: body.kind }, 'could not send a reply'));
  }

  /** Runs until stopped; resolves with the reason after `goodbye` was sent. */
  async run(): Promise<GoodbyeReason> {
    ensureStateDir(this.o.stateDir);
    const kp = loadOrCreateKeyPair(this.o.stateDir);
    this.privateKey = kp.privateKey;
    this.publicKey = kp.publicKey;
    this.ledger = new FileLedger(this.o.stateDir);
    this.log.info({ queue: this.o.queues.names.commands, publicKey: kp.publicKey, newKey: kp.created, version: this.o.version, commit: this.o.commit }, 'worker starting');
    await this.send({
      kind: 'hello', version: this.o.version, commit: this.o.commit, host: hostFacts(), publicKey: this.publicKey,
      pid: process.pid, startedAt: this.startedAt.toISOString(),
    });
    if (!this.stopRequest) this.setState('idle');
    this.heartbeat = setInterval(() => this.sendHeartbeat(), this.o.heartbeatMs);
    this.heartbeat.unref();
    this.lastActivity = Date.now();

    while (!this.stopRequest) {
      if (!this.job && this.o.idleTimeoutMs > 0 && Date.now() - this.lastActivity >= this.o.idleTimeoutMs) {
        this.log.info({ idleMs: Date.now() - this.lastActivity }, 'idle timeout reached');
        this.requestStop('idle-timeout', false);
        break;
      }
      let msg: ReceivedMessage | undefined;
      try {
        msg = await this.o.queues.receive(this.o.visibilitySeconds);
      } catch (e) {
        this.log.warn({ err: e }, 'receiving from the command queue failed; retrying');
        await this.sleep(Math.max(this.o.pollMs, 1000));
        continue;
      }
      if (!msg) {
        await this.sleep(this.o.pollMs);
        continue;
      }
      if (this.stopRequest) {
        // Received while stopping: hand it back at once for the next worker.
        await this.o.queues.setVisibility(msg.messageId, msg.popReceipt, 0).catch(() => undefined);
        break;
      }
      try {
        await this.handle(msg);
      } catch (e) {
        this.log.error({ err: e, messageId: msg.messageId }, 'handling a command failed; it will be delivered again');
      }
    }

    this.setState('draining');
    const job = this.job;
    if (job?.done) {
      this.log.info({ commandId: job.command.id, abort: this.stopRequest!.abortRunning }, this.stopRequest!.abortRunning ? 'aborting the running job' : 'waiting for the running job');
      await job.done;
    }
    clearInterval(this.heartbeat);
    const reason = this.stopRequest!.reason;
    await this.send({
      kind: 'goodbye', reason,
      ...(job?.abortReason ? { abortedCommandId: job.command.id } : {}),
      message: reason === 'idle-timeout' ? `no job for ${Math.round(this.o.idleTimeoutMs / 1000)} s` : `stopping (${reason})`,
    }).catch((e: unknown) => this.log.warn({ err: e }, 'could not send goodbye'));
    this.setState('stopped');
    return reason;
  }

  private sendHeartbeat(): void {
    const state = this.state === 'idle' ? 'idle' : this.state === 'running' ? 'busy' : this.state === 'draining' ? 'stopping' : undefined;
    if (!state) return;
    this.trySend({
      kind: 'heartbeat', state, ...(this.job ? { commandId: this.job.command.id } : {}),
      uptimeSeconds: Math.floor((Date.now() - this.startedAt.getTime()) / 1000),
    });
  }

  /** Sets a message aside: poison queue (with the reason), delete, `rejected`. Runs nothing. */
  private async reject(msg: ReceivedMessage, fault: RejectFault, code: ErrorCode, reason: string, claimed?: string): Promise<void> {
    const claimedId = claimed && !containsSecretText(claimed) ? claimed.slice(0, 128) : undefined;
    const message = oneLine(reason);
    this.log.warn({ messageId: msg.messageId, claimedId, fault, dequeueCount: msg.dequeueCount }, `refused a command: ${message}`);
    await this.o.queues.sendPoison(encodePoisonMessage({
      queue: this.o.queues.names.commands, messageId: msg.messageId, dequeueCount: msg.dequeueCount,
      at: new Date().toISOString(), fault, reason: message, ...(claimedId ? { claimedId } : {}),
    }, msg.messageText));
    await this.o.queues.delete(msg.messageId, msg.popReceipt);
    await this.send({ kind: 'rejected', messageId: msg.messageId.slice(0, 128), ...(claimedId ? { claimedId } : {}), fault, code, message });
  }

  private async handle(msg: ReceivedMessage): Promise<void> {
    let cmd: Command;
    try {
      cmd = openCommand(msg.messageText, this.o.macKey, { workerId: this.o.workerId });
    } catch (e) {
      if (!isProtocolError(e)) throw e;
      await this.reject(msg, e.fault, e.code, e.message, peekEnvelope(msg.messageText).id);
      return;
    }
    const decision = decideDelivery(
      { commandId: cmd.id, kind: cmd.kind, dequeueCount: msg.dequeueCount }, this.ledger,
      { runningCommandId: this.job?.command.id, maxDequeue: this.o.maxDequeue, deferSeconds: this.o.deferSeconds },
    );
    this.log.info({ commandId: cmd.id, kind: cmd.kind, messageId: msg.messageId, dequeueCount: msg.dequeueCount, action: decision.action }, `command ${cmd.kind}: ${decision.action}`);
    switch (decision.action) {
      case 'reply-again':
        await this.sendOutcome(cmd.id, decision.outcome);
        await this.o.queues.delete(msg.messageId, msg.popReceipt);
        return;
      case 'adopt':
        if (this.job && msg.messageId === this.job.messageId) {
          this.job.popReceipt = msg.popReceipt;
        } else {
          // The same command in a second queue message: answered from the ledger once the job ends.
          await this.o.queues.setVisibility(msg.messageId, msg.popReceipt, this.o.deferSeconds);
        }
        return;
      case 'defer':
        await this.o.queues.setVisibility(msg.messageId, msg.popReceipt, decision.visibilitySeconds);
        return;
      case 'poison':
        await this.reject(msg, 'poison', 'ABORTED', decision.reason, cmd.id);
        return;
      case 'run':
        if (isControlKind(cmd.kind)) await this.control(cmd as CommandOf<'cancel' | 'shutdown'>, msg);
        else await this.startJob(cmd as JobCommand, msg, decision.interrupted);
    }
  }

  private async control(cmd: CommandOf<'cancel' | 'shutdown'>, msg: ReceivedMessage): Promise<void> {
    await this.o.queues.delete(msg.messageId, msg.popReceipt);
    if (cmd.kind === 'cancel') {
      const job = this.job;
      if (job && job.command.id === cmd.commandId && !job.abort.signal.aborted) {
        this.log.info({ commandId: cmd.commandId, reason: cmd.reason }, 'cancelling the running job');
        job.abortReason = 'cancel';
        job.abort.abort(new CosmosBackupError('ABORTED', 'cancelled by the controller'));
      }
      return;
    }
    this.log.info({ reason: cmd.reason, abortRunning: cmd.abortRunning }, 'shutdown requested');
    this.requestStop('shutdown', cmd.abortRunning);
  }

  private async sendOutcome(commandId: string, outcome: FinalOutcome): Promise<void> {
    if (outcome.kind === 'completed') await this.send({ kind: 'completed', commandId, result: outcome.result });
    else {
      const { code, message, retryable, details } = outcome;
      await this.send({ kind: 'failed', commandId, code, message, retryable, ...(details ? { details } : {}) });
    }
  }

  private async startJob(cmd: JobCommand, msg: ReceivedMessage, interrupted: boolean): Promise<void> {
    const entry = startEntry(this.ledger.get(cmd.id), cmd.id, cmd.kind);
    let secrets: Map<string, Buffer>;
    try {
      secrets = openCommandSecrets(cmd, this.privateKey);
    } catch (e) {
      // Sealed to another key (an earlier worker) or altered: the controller re-seals and re-sends.
      const outcome = failureOutcome(e, undefined);
      this.ledger.put(finishEntry(entry, outcome));
      await this.sendOutcome(cmd.id, outcome);
      await this.o.queues.delete(msg.messageId, msg.popReceipt);
      return;
    }
    this.ledger.put(entry);
    await this.send({ kind: 'accepted', commandId: cmd.id, commandKind: cmd.kind, attempt: entry.attempt });
    const job: RunningJob = { command: cmd, messageId: msg.messageId, popReceipt: msg.popReceipt, entry, abort: new AbortController() };
    this.job = job;
    this.setState('running');
    this.lastActivity = Date.now();
    job.done = this.execute(job, secrets, interrupted).catch((e: unknown) => {
      this.log.error({ err: e, commandId: cmd.id }, 'finishing a job failed');
    }).finally(() => {
      secrets.clear();
      this.job = undefined;
      this.lastActivity = Date.now();
      if (this.state === 'running') this.setState('idle');
      this.wake?.();
    });
  }

  private async execute(job: RunningJob, secrets: Map<string, Buffer>, interrupted: boolean): Promise<void> {
    const cmd = job.command;
    const renew = setInterval(() => {
      this.o.queues.setVisibility(job.messageId, job.popReceipt, this.o.visibilitySeconds)
        .then((receipt) => { job.popReceipt = receipt; })
        .catch((e: unknown) => this.log.warn({ err: e, commandId: cmd.id }, 'could not renew the command\'s visibility'));
    }, this.o.renewMs);
    const tracker = new ProgressTracker(this.o.progressMs);
    const onProgress = (s: ProgressSample) => {
      const r = tracker.update(s, Date.now());
      if (r) this.trySend({ kind: 'progress', commandId: cmd.id, ...r });
    };
    let outcome: FinalOutcome;
    const started = Date.now();
    let grace: NodeJS.Timeout | undefined;
    const abandoned = new Promise<never>((_, reject) => {
      job.abort.signal.addEventListener('abort', () => {
        grace = setTimeout(() => reject(new CosmosBackupError('ABORTED', `the job did not stop within ${this.o.abortGraceMs} ms of the abort`)), this.o.abortGraceMs);
      }, { once: true });
    });
    abandoned.catch(() => undefined);
    try {
      const running = runJob(cmd, {
        secrets, signal: job.abort.signal, onProgress, interrupted,
        log: (m, fields) => this.log.info({ commandId: cmd.id, ...fields }, m),
      });
      running.catch(() => undefined);
      const result = await Promise.race([running, abandoned]);
      outcome = { kind: 'completed', result };
      this.log.info({ commandId: cmd.id, kind: cmd.kind, jobId: cmd.jobId, ms: Date.now() - started, stats: result.stats }, 'job completed');
    } catch (e) {
      outcome = failureOutcome(e, job.abortReason);
      this.log.warn({ commandId: cmd.id, kind: cmd.kind, jobId: cmd.jobId, code: outcome.code, retryable: outcome.retryable, err: e }, `job failed: ${outcome.message}`);
    } finally {
      clearInterval(renew);
      clearTimeout(grace);
    }
    // Ledger first, then the reply, then the message (docs/PROTOCOL.md "Visibility timeout, completion and deletion").
    this.ledger.put(finishEntry(job.entry, outcome));
    await this.sendOutcome(cmd.id, outcome);
    if (outcome.kind === 'failed' && outcome.retryable && (job.abortReason === 'sigterm' || job.abortReason === 'shutdown')) {
      // Stopped with the worker: hand the command back at once for the restarted or replacement worker.
      await this.o.queues.setVisibility(job.messageId, job.popReceipt, 0).catch((e: unknown) => this.log.warn({ err: e }, 'could not release the command'));
    } else {
      await this.o.queues.delete(job.messageId, job.popReceipt);
    }
  }
}
