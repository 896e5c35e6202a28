// The agent's entry point and composition root: parses the command line, runs one command, and
// turns any error into one human line (the full story with --verbose) and a non-zero exit code.
import { Command, CommanderError } from 'commander';
import { CosmosBackupError, humanMessage } from '../shared/errors.ts';
import { registerRepoCommands } from './commands/repo.ts';
import { registerDatabaseCommands } from './commands/databases.ts';
import { registerWorkerCommand } from './commands/worker.ts';
import { VERSION, COMMIT } from './version.ts';

export const EXIT = { ok: 0, error: 1, usage: 2, corrupt: 3, locked: 4, auth: 5 } as const;

function exitCode(e: unknown): number {
  if (!(e instanceof CosmosBackupError)) return EXIT.error;
  switch (e.code) {
    case 'INVALID_ARGUMENT': return EXIT.usage;
    case 'CORRUPT_OBJECT': return EXIT.corrupt;
    case 'REPO_LOCKED': return EXIT.locked;
    case 'WRONG_PASSWORD': case 'PASSWORD_REQUIRED': case 'DATABASE_AUTH': case 'STORAGE_AUTH': return EXIT.auth;
    default: return EXIT.error;
  }
}

export function buildProgram(): Command {
  const program = new Command('cosmos-backup-agent')
    .description('cosmos-backup agent: backs up and restores PostgreSQL and MongoDB databases into deduplicated, encrypted repositories')
    .version(`${VERSION} (${COMMIT})`, '-V, --version')
    .option('-v, --verbose', 'print details and stack traces of errors')
    .showHelpAfterError()
    .exitOverride();
  registerRepoCommands(program);
  registerDatabaseCommands(program);
  registerWorkerCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const verbose = argv.includes('--verbose') || argv.includes('-v');
    process.stderr.write(`error: ${humanMessage(e)}\n`);
    if (verbose) {
      process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
      if (e instanceof CosmosBackupError && Object.keys(e.details).length) process.stderr.write(`details: ${JSON.stringify(e.details)}\n`);
      let c = (e as Error)?.cause;
      while (c) { process.stderr.write(`caused by: ${(c as Error).stack ?? String(c)}\n`); c = (c as Error).cause; }
    }
    return exitCode(e);
  }
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry || process.env.COSMOS_BACKUP_AGENT_MAIN === '1') {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
