// What notification mails say, and to whom (pure: no I/O). Session mails follow the policy's
// result switches; sessions without a policy follow the global ones. Routine sessions
// (configuration, retention, cleanup) mail only when something went wrong.
import type { EmailSettings, NotificationSettings } from '../db/config-store.ts';
import type { LogLine, Session } from '../db/session-store.ts';

export interface Mail { to: string[]; subject: string; text: string }

const SUCCESS_MAILS = new Set(['backup', 'archive', 'restore']);

/** Recipients for a finished session's mail, or [] when no mail is due. */
export function sessionRecipients(session: Pick<Session, 'type' | 'state'>, email: Pick<EmailSettings, 'enabled' | 'to' | 'notifyOnSuccess' | 'notifyOnWarning' | 'notifyOnFailure'> | null, policy: NotificationSettings | null): string[] {
  if (!email?.enabled || session.type === 'report' || session.state === 'running') return [];
  if (session.state === 'success' && !SUCCESS_MAILS.has(session.type)) return [];
  const switches = policy
    ? { success: policy.onSuccess, warning: policy.onWarning, failed: policy.onFailure }
    : { success: email.notifyOnSuccess, warning: email.notifyOnWarning, failed: email.notifyOnFailure };
  if (!switches[session.state]) return [];
  return [...new Set([...email.to, ...(policy?.recipients ?? [])])];
}

// Defence in depth: nothing that looks like a key, SAS signature or password leaves in a mail.
const SECRET_PAIRS = /\b(AccountKey|SharedAccessSignature|SharedAccessKey|sig|password|pwd)=([^;&\s]+)/gi;
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi;
export function redact(text: string): string {
  return text.replace(SECRET_PAIRS, '$1=***').replace(URL_USERINFO, '$1***@');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

function duration(s: Pick<Session, 'startedAt' | 'finishedAt'>): string {
  if (!s.finishedAt) return 'still running';
  const sec = Math.round((Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000);
  return sec < 120 ? `${sec} s` : sec < 7200 ? `${Math.round(sec / 60)} min` : `${(sec / 3600).toFixed(1)} h`;
}

const STATE_WORD = { success: 'Success', warning: 'Warning', failed: 'Failed', running: 'Running' } as const;

/** The mail for one finished session. */
export function sessionMail(s: Session & { log: LogLine[] }, policyName: string | null, to: string[]): Mail {
  const what = policyName ? `${s.type} of policy "${policyName}"` : `${s.type} session`;
  const lines = [
    `${STATE_WORD[s.state]}: ${what}`,
    '',
    `Session:   ${s.id}`,
    `Type:      ${s.type} (${s.trigger})`,
    ...(policyName ? [`Policy:    ${policyName}`] : []),
    `Started:   ${s.startedAt}`,
    `Finished:  ${s.finishedAt ?? '-'} (${duration(s)})`,
    `Data:      ${formatBytes(s.bytes)}`,
    ...(s.error ? [`Problem:   ${s.error}`] : []),
  ];
  if (s.accounts.length) {
    lines.push('', 'Accounts:');
    for (const a of s.accounts) lines.push(`  ${a.accountName}: ${a.state}${a.bytes ? `, ${formatBytes(a.bytes)}` : ''}${a.message ? ` - ${a.message}` : ''}`);
  }
  const problems = s.log.filter((l) => l.level !== 'info');
  if (problems.length) {
    lines.push('', 'Warnings and errors from the session log:');
    for (const l of problems.slice(-20)) lines.push(`  ${l.at} ${l.level}: ${l.message}`);
  }
  lines.push('', `Full log: GET /sessions/${s.id}`);
  return { to, subject: `[cosmos-backup] ${STATE_WORD[s.state]}: ${what}`, text: redact(lines.join('\n')) + '\n' };
}

export interface ReportInput {
  since: Date;
  until: Date;
  /** sessions started in [since, until), newest first */
  sessions: Session[];
  policyNames: Map<string, string>;
}

/** The daily report: every session of the last 24 hours, by policy, with bytes and failures. */
export function dailyReportMail(r: ReportInput, to: string[]): Mail {
  const sessions = r.sessions.filter((s) => s.type !== 'report');
  const count = (state: Session['state']) => sessions.filter((s) => s.state === state).length;
  const failed = count('failed');
  const warning = count('warning');
  const bytes = sessions.reduce((n, s) => n + s.bytes, 0);
  const lines = [
    `cosmos-backup daily report, ${r.since.toISOString()} to ${r.until.toISOString()}`,
    '',
    `Sessions:  ${sessions.length} (${count('success')} success, ${warning} warning, ${failed} failed, ${count('running')} running)`,
    `Data:      ${formatBytes(bytes)}`,
  ];
  const groups = new Map<string, Session[]>();
  for (const s of sessions) {
    const key = s.policyId ? (r.policyNames.get(s.policyId) ?? `(deleted policy ${s.policyId})`) : '(no policy)';
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const [name, list] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const b = list.reduce((n, s) => n + s.bytes, 0);
    lines.push('', `Policy ${name}: ${list.length} session(s), ${formatBytes(b)}`);
    const byType = new Map<string, Session[]>();
    for (const s of list) byType.set(s.type, [...(byType.get(s.type) ?? []), s]);
    for (const [type, ss] of byType) {
      const states = (['success', 'warning', 'failed', 'running'] as const).map((st) => [st, ss.filter((s) => s.state === st).length] as const).filter(([, n]) => n > 0);
      lines.push(`  ${type}: ${states.map(([st, n]) => `${n} ${st}`).join(', ')}`);
    }
  }
  const problems = sessions.filter((s) => s.state === 'failed' || s.state === 'warning');
  if (problems.length) {
    lines.push('', 'Failures and warnings:');
    for (const s of problems) {
      const policy = s.policyId ? ` policy "${r.policyNames.get(s.policyId) ?? s.policyId}"` : '';
      lines.push(`  ${s.startedAt} ${s.type}${policy}: ${s.state}${s.error ? ` - ${s.error}` : ''} (session ${s.id})`);
      for (const a of s.accounts.filter((a) => a.state === 'failed')) lines.push(`    ${a.accountName}: ${a.message ?? 'failed'}`);
    }
  } else if (sessions.length) {
    lines.push('', 'No failures.');
  } else {
    lines.push('', 'No sessions ran.');
  }
  const subject = `[cosmos-backup] Daily report: ${sessions.length} session(s), ${failed} failed, ${warning} warning`;
  return { to, subject, text: redact(lines.join('\n')) + '\n' };
}
