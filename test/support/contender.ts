/**
 * A standalone election candidate for tests: `node --import tsx test/support/contender.ts URL NAME TTL [PREFIX]`.
 * Prints one JSON line per event with the wall-clock time, so a test can order events across
 * processes; SIGTERM stops it gracefully (resign), SIGKILL does not.
 */
import { pino } from 'pino';
import { connectEtcd } from '../../src/coordination/client.js';
import { Elector } from '../../src/coordination/elector.js';

const [url, name, ttlText, prefix = '/autoradio/v1/election/test/'] = process.argv.slice(2);
const client = connectEtcd({ etcdUrls: [url!] });
const log = pino({ level: 'warn' }, pino.destination(2));
const elector = new Elector(client, { ttlSeconds: Number(ttlText), log });
const campaign = elector.campaign(prefix, JSON.stringify({ name }));
const say = (event: string, extra: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ event, name, t: Date.now(), ...extra })}\n`);
campaign.on('elected', () => say('elected'));
campaign.on('deposed', (reason: string) => say('deposed', { reason }));
elector.start();
campaign.start();
say('started');
process.on('SIGTERM', () => {
  void campaign.stop().then(async () => {
    say('stopped');
    await elector.stop();
    client.close();
    process.exit(0);
  });
});
