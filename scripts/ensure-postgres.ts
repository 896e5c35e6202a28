// Makes sure PostgreSQL server binaries exist (the demo and the test suite start a real server).
// On a fresh Debian/Ubuntu machine where we are root, installs Debian's postgresql package.
import { execFileSync } from 'node:child_process';
import { findPostgresBinDir } from '../test/support/postgres.ts';

export function ensurePostgres(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): string {
  try {
    return findPostgresBinDir();
  } catch (e) {
    if (process.getuid?.() !== 0) throw e;
    log('PostgreSQL server binaries not found: installing Debian\'s postgresql package (apt-get)…');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', 'postgresql'], { stdio: 'inherit', env });
    return findPostgresBinDir();
  }
}
