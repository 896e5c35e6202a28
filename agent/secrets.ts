// Where passwords come from: a file or an environment variable — never a command-line argument,
// which other users can read in the process list and which lands in shell history.
import { readFileSync, statSync } from 'node:fs';
import { CosmosBackupError } from '../shared/errors.ts';

export interface PasswordSource { passwordFile?: string; passwordEnv?: string }

export function readPassword(src: PasswordSource, what = 'repository'): string | undefined {
  if (src.passwordFile) {
    let text: string;
    try {
      const st = statSync(src.passwordFile);
      if (!st.isFile()) throw new Error('not a file');
      text = readFileSync(src.passwordFile, 'utf8');
    } catch (e) {
      throw new CosmosBackupError('INVALID_ARGUMENT', `cannot read the ${what} password file ${src.passwordFile}: ${(e as Error).message}`);
    }
    const pw = text.replace(/\r?\n$/, '');
    if (!pw) throw new CosmosBackupError('INVALID_ARGUMENT', `the ${what} password file ${src.passwordFile} is empty`);
    return pw;
  }
  if (src.passwordEnv) {
    const pw = process.env[src.passwordEnv];
    if (pw === undefined || pw === '') throw new CosmosBackupError('INVALID_ARGUMENT', `environment variable ${src.passwordEnv} (named by --password-env) is not set or empty`);
    return pw;
  }
  return undefined;
}
