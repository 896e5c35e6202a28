// The Run Command script that turns a fresh Ubuntu 22.04 VM into a worker (pure). It downloads the
// agent through its read-only SAS URI with curl, checks the MD5 the controller uploaded, and only
// then starts `worker` in the background. Secrets (the SAS URI, the queue SAS, the per-worker key)
// arrive as Run Command *protected parameters*, i.e. environment variables: they are never in the
// script text, never echoed, and the agent URL is unset before the worker starts.

/** Parameter names: plain ones are visible in the run command's definition, protected ones never. */
export const PLAIN_PARAMETERS = ['WORKER_ID', 'AGENT_MD5', 'QUEUE_SERVICE', 'WORKER_ARGS'] as const;
export const PROTECTED_PARAMETERS = ['AGENT_URL', 'COSMOS_BACKUP_QUEUE_SAS', 'COSMOS_BACKUP_WORKER_KEY'] as const;

/** Exit codes the controller turns into reasons. */
export const SCRIPT_EXIT = { download: 2, md5: 3, start: 4 } as const;

export const MD5_MISMATCH_MARK = 'agent binary MD5 mismatch';

export function workerStartScript(): string {
  return `#!/bin/bash
# cosmos-backup worker start (Run Command). Secrets come as environment variables only.
set -uo pipefail
umask 077
base="\${HOME:-/root}/cosmos-backup/\${WORKER_ID}"
mkdir -p "$base" && cd "$base" || { echo "cosmos-backup: cannot create $base" >&2; exit ${SCRIPT_EXIT.start}; }
if ! curl -fsS --retry 5 --retry-delay 2 --connect-timeout 20 -o agent.part "$AGENT_URL" 2>curl.err; then
  echo "cosmos-backup: cannot download the agent binary: $(tail -c 300 curl.err | sed -E 's/[?&]sig=[^ &]*/?sig=REDACTED/g')" >&2
  exit ${SCRIPT_EXIT.download}
fi
unset AGENT_URL
actual="$(md5sum agent.part | cut -d' ' -f1)"
if [ "$actual" != "$AGENT_MD5" ]; then
  rm -f agent.part
  echo "cosmos-backup: ${MD5_MISMATCH_MARK}: expected $AGENT_MD5, downloaded $actual; the binary was not started" >&2
  exit ${SCRIPT_EXIT.md5}
fi
mv -f agent.part cosmos-backup-agent && chmod 700 cosmos-backup-agent
# shellcheck disable=SC2086 # WORKER_ARGS holds several flags chosen by the controller
nohup ./cosmos-backup-agent worker --worker-id "$WORKER_ID" --queue-service "$QUEUE_SERVICE" --state-dir "$base/state" $WORKER_ARGS >worker.log 2>&1 </dev/null &
pid=$!
sleep 2
if ! kill -0 "$pid" 2>/dev/null; then
  echo "cosmos-backup: the worker exited at once:" >&2
  tail -c 1500 worker.log >&2
  exit ${SCRIPT_EXIT.start}
fi
echo "cosmos-backup worker $WORKER_ID started (pid $pid, agent md5 $actual)"
`;
}
