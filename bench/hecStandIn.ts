/**
 * The HEC stand-in of the tests (test/support/hecReceiver.ts) in a process of its own, for `npm run bench`:
 * the forwarder being measured does not share its CPU with the receiver. It prints its URL as one JSON line,
 * answers `{"count": true}` messages with the events received since the last one, and forgets the events it
 * counted (a long run would otherwise hold every parsed event in memory).
 */
import { startHecReceiver } from '../test/support/hecReceiver.js';

const token = process.argv[2] ?? '';
const receiver = await startHecReceiver({ token });
let counted = 0;
const drain = (): number => {
  counted += receiver.events.length;
  receiver.events.length = 0;
  receiver.requests.length = 0;
  return counted;
};
setInterval(drain, 200).unref();
process.on('message', (message: unknown) => {
  if (typeof message === 'object' && message !== null && 'count' in message) {
    const events = drain();
    counted = 0;
    process.send?.({ events });
  }
});
process.on('disconnect', () => {
  void receiver.stop().then(() => process.exit(0));
});
process.send?.({ url: receiver.url });
