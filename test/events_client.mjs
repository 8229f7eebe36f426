// events_client.mjs: an independent /events client for the end-to-end tests, built on the
// WHATWG-compliant npm package `eventsource` (what a browser's EventSource does, including
// the ?apikey= that browsers need because they cannot set headers).
//
// Usage: node events_client.mjs BASE_URL API_KEY N [LAST_EVENT_ID]
//
// Prints one JSON line per happening on stdout: {"type":"open"} when the stream is open,
// then {"type":"event","event":NAME,"id":ID,"data":DATA} for each of the first N events
// (servers.changed, config.reloaded, tools.indexed or any other name), and exits 0. An
// error before N events prints {"type":"error",...} and exits 1. LAST_EVENT_ID, when
// given, is sent as the lastEventId query parameter, as some clients do on reconnect.
import { EventSource } from 'eventsource';

const [base, key, nArg, lastId] = process.argv.slice(2);
const want = Number.parseInt(nArg ?? '', 10);
if (!base || !key || !Number.isInteger(want) || want < 1) {
  console.error('usage: node events_client.mjs BASE_URL API_KEY N [LAST_EVENT_ID]');
  process.exit(2);
}

const url = new URL('/events', base);
url.searchParams.set('apikey', key);
if (lastId !== undefined) url.searchParams.set('lastEventId', lastId);

const names = ['servers.changed', 'config.reloaded', 'tools.indexed', 'message', 'test.filler'];
const es = new EventSource(url.toString());
let got = 0;
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');

es.onopen = () => print({ type: 'open' });
es.onerror = (err) => {
  // EventSource reconnects by itself after a dropped connection; a failed first
  // connection (401, 400) closes it for good.
  if (es.readyState === EventSource.CLOSED) {
    print({ type: 'error', message: String(err?.message ?? err), code: err?.code ?? null });
    process.exit(1);
  }
};
for (const name of names) {
  es.addEventListener(name, (ev) => {
    print({ type: 'event', event: ev.type, id: ev.lastEventId, data: ev.data });
    if (++got >= want) {
      es.close();
      process.exit(0);
    }
  });
}
