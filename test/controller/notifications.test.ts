// Email notifications received on a real SMTP server (smtp-server + mailparser) started here:
// per-policy result switches, failure details, the daily report, and no secret in any mail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import { startTestController, client } from './support/controller.ts';
import { previousDailyTime } from '../../controller/sessions/scheduler.ts';
import { redact, sessionRecipients } from '../../controller/notifications/messages.ts';
import { toLocal } from '../../controller/policies/zoned.ts';

const SECRETS = { smtp: 'smtp-secret-PLAIN-1', db: 'db-secret-PLAIN-2', repo: 'repo-secret-PLAIN-3', sa: 'sa-secret-PLAIN-4' };
const mails: ParsedMail[] = [];
const logins: { username: string; password: string }[] = [];
let smtp: SMTPServer;
let port: number;
let ctl: Awaited<ReturnType<typeof startTestController>>;
let api: ReturnType<typeof client>;

before(async () => {
  smtp = new SMTPServer({
    disabledCommands: ['STARTTLS'], allowInsecureAuth: true, logger: false,
    onAuth(auth, _session, cb) {
      logins.push({ username: auth.username ?? '', password: auth.password ?? '' });
      if (auth.username === 'mailer' && auth.password === SECRETS.smtp) cb(null, { user: 'mailer' });
      else cb(new Error('Invalid username or password'));
    },
    onData(stream, _session, cb) {
      simpleParser(stream).then((m) => { mails.push(m); cb(); }, cb);
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  port = (smtp.server.address() as AddressInfo).port;
  ctl = await startTestController();
  api = client(ctl.app, ctl.bootstrapToken);
});
after(async () => {
  await ctl?.close();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
});

const emailSettings = (password = SECRETS.smtp) => ({
  smtp: { host: '127.0.0.1', port, secure: false, username: 'mailer', password },
  from: 'cosmos-backup@example.com', to: ['ops@example.com'],
  dailyReport: { enabled: true, time: '08:00', timeZone: 'Europe/Paris' },
});
const subjects = () => mails.map((m) => m.subject);
const everything = () => mails.map((m) => `${m.subject}\n${m.text}`).join('\n');

test('who gets a mail: policy switches for policy sessions, global ones otherwise, routine successes never', () => {
  const email = { enabled: true, to: ['ops@x.org'], notifyOnSuccess: false, notifyOnWarning: true, notifyOnFailure: true };
  const policy = { onSuccess: true, onWarning: false, onFailure: true, recipients: ['dba@x.org'] };
  assert.deepEqual(sessionRecipients({ type: 'backup', state: 'success' }, email, policy), ['ops@x.org', 'dba@x.org']);
  assert.deepEqual(sessionRecipients({ type: 'backup', state: 'warning' }, email, policy), []);
  assert.deepEqual(sessionRecipients({ type: 'retention', state: 'success' }, email, policy), [], 'routine success');
  assert.deepEqual(sessionRecipients({ type: 'retention', state: 'failed' }, email, policy), ['ops@x.org', 'dba@x.org']);
  assert.deepEqual(sessionRecipients({ type: 'cleanup', state: 'failed' }, email, null), ['ops@x.org']);
  assert.deepEqual(sessionRecipients({ type: 'restore', state: 'success' }, email, null), [], 'global success switch off');
  assert.deepEqual(sessionRecipients({ type: 'backup', state: 'failed' }, { ...email, enabled: false }, policy), []);
  assert.equal(redact('DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc123==;'), 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=***;');
  assert.equal(redact('see https://u:p@host/x?sv=1&sig=SECRET'), 'see https://***@host/x?sv=1&sig=***');
});

test('the daily report time is local to its zone, across DST', () => {
  // 2024-03-31 is the spring-forward day in Paris: 08:00 local is 06:00Z, the day before 07:00Z.
  assert.equal(previousDailyTime(new Date('2024-03-31T07:00:00Z'), '08:00', 'Europe/Paris').toISOString(), '2024-03-31T06:00:00.000Z');
  assert.equal(previousDailyTime(new Date('2024-03-31T05:59:00Z'), '08:00', 'Europe/Paris').toISOString(), '2024-03-30T07:00:00.000Z');
  assert.equal(previousDailyTime(new Date('2024-03-31T06:00:00Z'), '08:00', 'Europe/Paris').toISOString(), '2024-03-31T06:00:00.000Z');
});

test('success and failure mails follow the policy switches; the daily report lists the day', async () => {
  const put = await api.put('/settings', { email: emailSettings() });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.email.dailyReport.timeZone, 'Europe/Paris');
  const next = ctl.scheduler.nextReport();
  assert.ok(next, 'the daily report is armed after the settings change');
  const local = toLocal(next, 'Europe/Paris');
  assert.deepEqual([local.hour, local.minute], [8, 0]);

  const acc = ctl.gateways.cloud.addAccount({ name: 'orders-pg', kind: 'PostgreSQL' });
  const sa = (await api.post('/service-accounts', { name: 'sa', tenantId: 't', auth: 'secret', clientId: '11111111-2222-3333-4444-555555555555', clientSecret: SECRETS.sa })).body;
  const repo = (await api.post('/repositories', { name: 'main', storageAccount: 'backupsa', container: 'backups', password: SECRETS.repo })).body;
  const created = await api.post('/policies', {
    name: 'nightly', serviceAccountId: sa.id, scope: { accounts: [acc.id] },
    backup: { repositoryId: repo.id, schedules: { daily: { hours: [1], keepDays: 7 } }, credentials: [{ accountId: acc.id, username: 'backup', password: SECRETS.db }] },
    notifications: { onSuccess: true, onWarning: true, onFailure: true, recipients: ['dba@example.com'] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const policy = created.body;
  await ctl.runner.idle();
  assert.equal(mails.length, 0, 'configuration sessions that succeed send nothing');

  const ok = (await api.post(`/policies/${policy.id}/run`)).body;
  await ctl.runner.idle();
  assert.deepEqual(subjects(), ['[cosmos-backup] Success: backup of policy "nightly"']);
  const success = mails[0]!;
  assert.deepEqual((success.to as { value: { address: string }[] }).value.map((v) => v.address).sort(), ['dba@example.com', 'ops@example.com']);
  assert.equal(success.from!.value[0]!.address, 'cosmos-backup@example.com');
  assert.match(success.text!, new RegExp(`Session: +${ok.id}`));
  assert.match(success.text!, /orders-pg: success, 1000 B|orders-pg: success, \d+(\.\d)? (B|KiB)/);
  assert.deepEqual(logins.at(-1), { username: 'mailer', password: SECRETS.smtp }, 'the sealed SMTP password is used to log in');
  assert.match((await api.get(`/sessions/${ok.id}`)).body.log.at(-1).message, /notification mail sent to 2 recipient\(s\)/);

  ctl.gateways.workers.mode = 'fail';
  const bad = (await api.post(`/policies/${policy.id}/run`)).body;
  await ctl.runner.idle();
  ctl.gateways.workers.mode = 'finish';
  assert.equal(mails.length, 2);
  const failure = mails[1]!;
  assert.equal(failure.subject, '[cosmos-backup] Failed: backup of policy "nightly"');
  assert.match(failure.text!, /Problem: +1 account\(s\) failed/);
  assert.match(failure.text!, /orders-pg: failed - password authentication failed for user "backup"/);
  assert.match(failure.text!, new RegExp(`GET /sessions/${bad.id}`));

  // Switch success mails off for this policy: a successful run sends nothing more.
  await api.patch(`/policies/${policy.id}`, { notifications: { onSuccess: false, onWarning: true, onFailure: true, recipients: [] } });
  await api.post(`/policies/${policy.id}/run`);
  await ctl.runner.idle();
  assert.equal(mails.length, 2, 'no mail for a success when the switch is off');

  const report = await ctl.runner.start({ type: 'report', trigger: 'manual' });
  await ctl.runner.idle();
  assert.equal((await api.get(`/sessions/${report!.id}`)).body.state, 'success');
  assert.equal(mails.length, 3);
  const daily = mails[2]!;
  assert.match(daily.subject!, /^\[cosmos-backup\] Daily report: \d+ session\(s\), 1 failed, 0 warning$/);
  assert.deepEqual((daily.to as { value: { address: string }[] }).value.map((v) => v.address), ['ops@example.com']);
  assert.match(daily.text!, /Policy nightly: \d+ session\(s\), [\d.]+ (B|KiB)/);
  assert.match(daily.text!, / {2}backup: 2 success, 1 failed/);
  assert.match(daily.text!, /Failures and warnings:/);
  assert.match(daily.text!, new RegExp(`backup policy "nightly": failed - 1 account\\(s\\) failed \\(session ${bad.id}\\)`));
  assert.match(daily.text!, /orders-pg: password authentication failed/);

  const all = everything();
  for (const s of Object.values(SECRETS)) assert.ok(!all.includes(s), 'no secret in any mail');
});

test('an SMTP failure is recorded on the session, without the password, and never changes its result', async () => {
  await api.put('/settings', { email: { ...emailSettings('wrong-smtp-password'), notifyOnFailure: true } });
  const policy = (await api.get('/policies')).body[0];
  ctl.gateways.workers.mode = 'fail';
  const run = (await api.post(`/policies/${policy.id}/run`)).body;
  await ctl.runner.idle();
  ctl.gateways.workers.mode = 'finish';
  const s = (await api.get(`/sessions/${run.id}`)).body;
  assert.equal(s.state, 'failed');
  const line = s.log.at(-1);
  assert.equal(line.level, 'warning');
  assert.match(line.message, new RegExp(`^notification mail not sent: cannot send mail through 127\\.0\\.0\\.1:${port}: `));
  assert.ok(!line.message.includes('wrong-smtp-password'));
  const report = await ctl.runner.start({ type: 'report', trigger: 'manual' });
  await ctl.runner.idle();
  const r = (await api.get(`/sessions/${report!.id}`)).body;
  assert.equal(r.state, 'failed');
  assert.match(r.error, /cannot send mail through/);
  // Reports off: the timer is disarmed.
  await api.put('/settings', { email: { ...emailSettings(), dailyReport: { enabled: false } } });
  assert.equal(ctl.scheduler.nextReport(), null);
});
