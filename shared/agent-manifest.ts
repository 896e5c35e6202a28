// What the agent build writes beside the binary (scripts/build-agent.ts) and the controller reads
// before it deploys the binary to workers (controller/workers/agent-binary.ts).
export const AGENT_BINARY_NAME = 'cosmos-backup-agent-linux-x64';

export interface AgentManifest {
  name: string;
  version: string;
  commit: string;
  size: number;
  md5: { hex: string; base64: string };
  sha256: string;
  node: string;
  builtAt: string;
}
