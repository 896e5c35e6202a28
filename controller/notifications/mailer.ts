// Sends notification mails over SMTP (nodemailer) with the global email settings. The SMTP
// password is opened from the configuration database only for the send and never logged.
import nodemailer from 'nodemailer';
import { CosmosBackupError } from '../../shared/errors.ts';
import type { EmailSettings } from '../db/config-store.ts';
import type { Mail } from './messages.ts';

export async function sendMail(email: EmailSettings, mail: Mail): Promise<void> {
  if (mail.to.length === 0) return;
  const { host, port, secure, username, password } = email.smtp;
  const transport = nodemailer.createTransport({
    host, port, secure,
    auth: username ? { user: username, pass: password ?? '' } : undefined,
    connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 30_000,
  });
  try {
    await transport.sendMail({ from: email.from, to: mail.to, subject: mail.subject, text: mail.text });
  } catch (e) {
    // nodemailer's messages carry the server's reply, never the password; say where it failed.
    const reason = (e as Error).message?.split('\n')[0] ?? String(e);
    throw new CosmosBackupError('INTERNAL', `cannot send mail through ${host}:${port}: ${reason}`, { cause: e });
  } finally {
    transport.close();
  }
}
