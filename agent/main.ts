// Entry of the bundled agent binary (scripts/build-agent.ts): cli.ts decides by itself whether it
// is the entry when run as a .ts file, which cannot work inside a single bundle, so this calls it.
import { main } from './cli.ts';

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
