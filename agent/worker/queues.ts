// The worker's side of its queue pair (Azure Queue Storage through @azure/storage-queue):
// receive one command at a time, keep it hidden while it runs (each update returns a new pop
// receipt, which the caller must keep), delete it when done, send replies, set messages aside
// on `<queue>-poison`. No protocol logic here: texts in, texts out.
import { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { CosmosBackupError } from '../../shared/errors.ts';
import type { QueueNames } from '../../shared/protocol/messages.ts';
import { MESSAGE_MAX_AGE_SECONDS } from '../../shared/protocol/constants.ts';
import { queueError as sharedQueueError, statusOf } from '../../shared/protocol/queue-errors.ts';

export type QueueAuth =
  | { kind: 'connection-string'; connectionString: string }
  /** service URL + one SAS token (without '?') for every queue, e.g. an account SAS */
  | { kind: 'sas'; serviceUrl: string; sas: string }
  /** service URL + a SAS token per queue name: what the controller hands a worker, each token
   * good for its one queue and only what the worker does there (docs/AGENT.md) */
  | { kind: 'queue-sas'; serviceUrl: string; tokens: Record<string, string> }
  /** service URL + DefaultAzureCredential (managed identity on the VM) */
  | { kind: 'identity'; serviceUrl: string; clientId?: string };

export interface ReceivedMessage {
  messageId: string;
  popReceipt: string;
  dequeueCount: number;
  messageText: string;
}

const HINTS = { auth: 'check the worker\'s queue credentials', notFound: 'the controller creates the worker\'s queues before launching it' };
const queueError = (what: string, e: unknown) => sharedQueueError(what, e, HINTS);

/** A client for a queue by name. */
export type QueueOpener = (name: string) => QueueClient;

export async function queueOpener(auth: QueueAuth): Promise<QueueOpener> {
  const options = { retryOptions: { maxTries: 4, retryDelayInMs: 500, maxRetryDelayInMs: 5000 } };
  const service = auth.kind === 'connection-string' ? '' : auth.serviceUrl.replace(/\/+$/, '');
  switch (auth.kind) {
    case 'connection-string': {
      let client: QueueServiceClient;
      try {
        client = QueueServiceClient.fromConnectionString(auth.connectionString, options);
      } catch {
        throw new CosmosBackupError('INVALID_ARGUMENT', 'the queue connection string is not a valid storage connection string');
      }
      return (name) => client.getQueueClient(name);
    }
    case 'sas': {
      const client = new QueueServiceClient(`${service}?${auth.sas.replace(/^\?/, '')}`, undefined, options);
      return (name) => client.getQueueClient(name);
    }
    case 'queue-sas':
      return (name) => {
        const token = auth.tokens[name];
        if (!token) throw new CosmosBackupError('INVALID_ARGUMENT', `the queue SAS holds no token for queue ${name}: the worker id and the SAS must come from the same launch`);
        return new QueueClient(`${service}/${encodeURIComponent(name)}?${token.replace(/^\?/, '')}`, undefined, options);
      };
    case 'identity': {
      const { DefaultAzureCredential } = await import('@azure/identity');
      const client = new QueueServiceClient(auth.serviceUrl, new DefaultAzureCredential(auth.clientId ? { managedIdentityClientId: auth.clientId } : {}), options);
      return (name) => client.getQueueClient(name);
    }
  }
}

export class WorkerQueues {
  readonly names: QueueNames;
  private readonly commands: QueueClient;
  private readonly replies: QueueClient;
  private readonly poisonQueue: QueueClient;

  constructor(open: QueueOpener, names: QueueNames) {
    this.names = names;
    this.commands = open(names.commands);
    this.replies = open(names.replies);
    this.poisonQueue = open(names.commandsPoison);
  }

  /** One command, hidden for visibilitySeconds; undefined when the queue is empty. */
  async receive(visibilitySeconds: number): Promise<ReceivedMessage | undefined> {
    try {
      const r = await this.commands.receiveMessages({ numberOfMessages: 1, visibilityTimeout: visibilitySeconds });
      const m = r.receivedMessageItems[0];
      if (!m) return undefined;
      return { messageId: m.messageId, popReceipt: m.popReceipt, dequeueCount: m.dequeueCount, messageText: m.messageText };
    } catch (e) {
      throw queueError('receiving a command', e);
    }
  }

  /** Hides the message for seconds more; returns the new pop receipt (the old one is dead). */
  async setVisibility(messageId: string, popReceipt: string, seconds: number): Promise<string> {
    try {
      const r = await this.commands.updateMessage(messageId, popReceipt, undefined, seconds);
      if (!r.popReceipt) throw new Error('no pop receipt in the update response');
      return r.popReceipt;
    } catch (e) {
      throw queueError('updating a command\'s visibility', e);
    }
  }

  /** Deletes a command; "not found" is fine (expired, or received again elsewhere: the ledger answers it). */
  async delete(messageId: string, popReceipt: string): Promise<void> {
    try {
      await this.commands.deleteMessage(messageId, popReceipt);
    } catch (e) {
      if (statusOf(e) === 404) return;
      throw queueError('deleting a command', e);
    }
  }

  async sendReply(text: string): Promise<void> {
    try {
      await this.replies.sendMessage(text, { messageTimeToLive: MESSAGE_MAX_AGE_SECONDS });
    } catch (e) {
      throw queueError('sending a reply', e);
    }
  }

  async sendPoison(text: string): Promise<void> {
    // Kept until someone looks at it.
    const send = () => this.poisonQueue.sendMessage(text, { messageTimeToLive: -1 });
    try {
      try {
        await send();
      } catch (e) {
        // The controller creates it before the launch; a worker run by hand creates it here
        // (a per-queue SAS may only add messages, so creating is tried only when it is missing).
        if (statusOf(e) !== 404) throw e;
        await this.poisonQueue.createIfNotExists();
        await send();
      }
    } catch (e) {
      throw queueError('setting a message aside on the poison queue', e);
    }
  }
}
