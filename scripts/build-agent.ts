// Builds the agent as one self-contained Linux executable, offline (docs/AGENT.md):
//   1. esbuild bundles agent/main.ts and everything it imports into one CommonJS file;
//   2. the pinned registry Node (node_modules/node/bin/node, Node 24) turns it into a SEA blob;
//   3. postject's API injects the blob into a copy of that same Node binary;
//   4. the result is smoke-tested (`--version` with an empty environment must print the agent's
//      version: a failed injection silently leaves a plain `node`), then hashed and described.
// Outputs dist/cosmos-backup-agent-linux-x64, .md5 (md5sum format) and .json (manifest).
// Skips all of it when the binary is newer than every source file, unless --force.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_BINARY_NAME, type AgentManifest } from '../shared/agent-manifest.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BINARY_NAME = AGENT_BINARY_NAME;
export const DIST = path.join(ROOT, 'dist');
export const BINARY = path.join(DIST, BINARY_NAME);
export const MANIFEST = `${BINARY}.json`;
/** The registry Node (npm package `node`, pinned in package.json) the binary is built over. */
export const NODE_BINARY = path.join(ROOT, 'node_modules', 'node', 'bin', 'node');
/** V8 flags the binary starts with (see the SEA step below); `npm run agent` passes the same. */
export const AGENT_V8_FLAGS = ['--max-semi-space-size=4', '--initial-old-space-size=48'];
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/**
 * Optional modules the mongodb driver (and pg) probe for with require() inside try/catch. They
 * are not installed and must not be bundled; inside the binary require() of them throws, which
 * the drivers treat as "feature not available".
 */
export const OPTIONAL_EXTERNALS = [
  'kerberos', 'snappy', '@mongodb-js/zstd', 'mongodb-client-encryption', 'aws4', 'gcp-metadata', 'socks',
  '@aws-sdk/credential-providers', 'pg-native',
];

/** Inputs whose change means a rebuild. */
const SOURCE_ROOTS = ['agent', 'shared', 'scripts/build-agent.ts', 'package.json', 'package-lock.json'];


function newestSource(p: string): number {
  const st = statSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(p)) newest = Math.max(newest, newestSource(path.join(p, e)));
  return newest;
}

/** True when the binary and its manifest exist and are newer than every source file. */
export function isUpToDate(): boolean {
  const bin = statSync(BINARY, { throwIfNoEntry: false });
  if (!bin || !existsSync(MANIFEST)) return false;
  const newest = Math.max(...SOURCE_ROOTS.map((s) => newestSource(path.join(ROOT, s))));
  return bin.mtimeMs > newest;
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

function hashFile(file: string, algo: 'md5' | 'sha256'): Buffer {
  return createHash(algo).update(readFileSync(file)).digest();
}

export interface BuildOptions {
  force?: boolean;
  log?: (line: string) => void;
}

export async function buildAgent(opts: BuildOptions = {}): Promise<AgentManifest & { rebuilt: boolean; seconds: number }> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const started = Date.now();
  if (!opts.force && isUpToDate()) {
    const m = JSON.parse(readFileSync(MANIFEST, 'utf8')) as AgentManifest;
    log(`${BINARY_NAME} is up to date (${m.version}, ${m.commit}); use --force to rebuild`);
    return { ...m, rebuilt: false, seconds: 0 };
  }
  if (!existsSync(NODE_BINARY)) throw new Error(`the registry Node binary is missing at ${NODE_BINARY}: run npm ci`);
  const nodeVersion = execFileSync(NODE_BINARY, ['--version'], { encoding: 'utf8', env: {} }).trim();
  if (!/^v24\./.test(nodeVersion)) throw new Error(`expected Node 24 at ${NODE_BINARY}, found ${nodeVersion}`);

  const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const commit = gitCommit();
  const work = path.join(DIST, '.build');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const bundle = path.join(work, 'agent.cjs');
  const blob = path.join(work, 'sea-prep.blob');
  const seaConfig = path.join(work, 'sea-config.json');
  const tmpBinary = path.join(work, BINARY_NAME);

  // 1. one CommonJS file
  const { build } = await import('esbuild');
  const res = await build({
    entryPoints: [path.join(ROOT, 'agent', 'main.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    external: OPTIONAL_EXTERNALS,
    define: {
      __AGENT_VERSION__: JSON.stringify(version),
      __AGENT_COMMIT__: JSON.stringify(commit),
      // ESM sources read import.meta.url only for development fallbacks; in a CJS bundle it would
      // be empty. A fixed URL that is never argv[1] also keeps cli.ts from running main twice.
      'import.meta.url': JSON.stringify('file:///cosmos-backup-agent/agent.cjs'),
    },
    legalComments: 'none',
    logLevel: 'error',
    metafile: true,
  });
  // esbuild escapes non-ASCII characters in strings, templates, regular expressions and
  // identifiers, but not in the comments it keeps; one such character makes V8 decode the whole
  // 6 MiB source into a two-byte string at every start (a sixth of the start-up's CPU). Escaped
  // the same way, the source is one-byte; inside a comment the escape is as harmless.
  const source = readFileSync(bundle, 'utf8');
  writeFileSync(bundle, source.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  const bundleBytes = statSync(bundle).size;
  log(`bundled ${Object.keys(res.metafile.inputs).length} modules into ${(bundleBytes / 1048576).toFixed(1)} MiB`);

  // 2. the SEA blob, made by the same Node that runs it
  // A small young generation makes V8 collect dead frame and pack buffers promptly: measured
  // about -60 MiB of peak RSS during a backup, for a few percent of CPU. A 48 MiB floor under the
  // old generation's limit stops V8 from starting a major GC every ~80 ms on the agent's small
  // (~15 MiB) heap: a restore's major GCs 56 -> 22, a fifth less agent CPU, +25 MiB of RSS.
  // The code cache (the bundle compiled ahead) cuts a third of start-up, paid by every command:
  // `--version` about 0.45 -> 0.3 s (bare node: 0.12 s).
  // V8 accepts the cache only when it was made under the flags the binary runs with.
  writeFileSync(seaConfig, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, useSnapshot: false, execArgv: AGENT_V8_FLAGS }));
  execFileSync(NODE_BINARY, [...AGENT_V8_FLAGS, '--experimental-sea-config', seaConfig], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });

  // 3. inject into a copy of that Node
  copyFileSync(NODE_BINARY, tmpBinary);
  chmodSync(tmpBinary, 0o755);
  const require = createRequire(import.meta.url);
  const { inject } = require('postject') as { inject: (file: string, name: string, data: Buffer, o: { sentinelFuse: string }) => Promise<void> };
  await inject(tmpBinary, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });

  // 4. smoke test with an empty environment: a plain node would print its own version, and a
  // code cache V8 rejects (made under other flags) would print a warning on every run
  const smoke = spawnSync(tmpBinary, ['--version'], { encoding: 'utf8', env: {}, cwd: work, timeout: 60_000 });
  if (smoke.error || smoke.status !== 0) {
    throw new Error(`smoke test of the built binary failed: ${smoke.error?.message ?? `exit ${smoke.status}: ${smoke.stderr.slice(0, 500)}`}`, { cause: smoke.error });
  }
  const out = smoke.stdout.trim();
  if (out !== `${version} (${commit})`) {
    throw new Error(`smoke test of the built binary failed: --version printed "${out.slice(0, 200)}", expected "${version} (${commit})" (was the SEA blob injected?)`);
  }
  if (smoke.stderr.trim()) throw new Error(`smoke test of the built binary failed: --version wrote to stderr: ${smoke.stderr.trim().slice(0, 500)}`);

  renameSync(tmpBinary, BINARY);
  const md5 = hashFile(BINARY, 'md5');
  const manifest: AgentManifest = {
    name: BINARY_NAME, version, commit, size: statSync(BINARY).size,
    md5: { hex: md5.toString('hex'), base64: md5.toString('base64') },
    sha256: hashFile(BINARY, 'sha256').toString('hex'),
    node: nodeVersion, builtAt: new Date().toISOString(),
  };
  writeFileSync(`${BINARY}.md5`, `${manifest.md5.hex}  ${BINARY_NAME}\n`);
  writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
  rmSync(work, { recursive: true, force: true });
  const seconds = (Date.now() - started) / 1000;
  log(`built ${path.relative(ROOT, BINARY)}: ${(manifest.size / 1048576).toFixed(1)} MiB, version ${version} (${commit}), ${nodeVersion}, md5 ${manifest.md5.hex}, in ${seconds.toFixed(1)} s`);
  return { ...manifest, rebuilt: true, seconds };
}

const isEntry = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntry) {
  buildAgent({ force: process.argv.includes('--force') }).catch((e: unknown) => {
    process.stderr.write(`build:agent failed: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
