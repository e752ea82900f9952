// The official Node.js client (rocketmq-client-nodejs 1.0.8) against a running broker.
// Usage: node roundtrip.js <endpoint> <topic> <group> <count>
// Sends <count> messages (tags, keys, properties, bodies up to 256 KiB), receives and acks
// them, checks each arrives intact and once; then checks that unacked messages come back
// after their invisible duration with deliveryAttempt 2. Exits non-zero on any failure.
const crypto = require('crypto');
const { Producer, SimpleConsumer } = require('rocketmq-client-nodejs');

const [endpoints, topic, group, countArg] = process.argv.slice(2);
const count = Number(countArg || 100);
const quiet = { info() {}, warn() {}, debug() {}, error(...a) { console.error(...a); } };
const tags = ['TagA', 'TagB', undefined];
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

function fail(msg) { throw new Error(msg); }

function body(i) {
  const size = i % 25 === 0 ? 256 * 1024 : 1 + ((i * 7919) % 3000);
  return Buffer.from(crypto.createHash('sha512').update(String(i)).digest().toString('hex').repeat(Math.ceil(size / 128)).slice(0, size));
}

async function receiveAll(consumer, expected, invisibleMs, ack) {
  const got = new Map();
  const deadline = Date.now() + 120000;
  while (got.size < expected) {
    if (Date.now() > deadline) fail(`only ${got.size} of ${expected} received`);
    for (const m of await consumer.receive(32, invisibleMs)) {
      if (got.has(m.messageId)) fail(`message ${m.messageId} delivered twice`);
      got.set(m.messageId, m);
      if (ack) await consumer.ack(m);
    }
  }
  return got;
}

(async () => {
  const producer = new Producer({ endpoints, namespace: '', logger: quiet, topics: [topic] });
  await producer.startup();
  const sent = new Map();
  for (let i = 0; i < count; i++) {
    const b = body(i);
    const tag = tags[i % tags.length];
    const keys = [`key-${i}`];
    const properties = new Map([['idx', String(i)], ['lang', 'node']]);
    const receipt = await producer.send({ topic, tag, keys, properties, body: b });
    sent.set(receipt.messageId, { i, digest: sha(b), tag, keys, properties });
  }
  await producer.shutdown();

  const consumer = new SimpleConsumer({
    endpoints, namespace: '', logger: quiet, consumerGroup: group,
    subscriptions: new Map([[topic, '*']]), awaitDuration: 3000,
  });
  await consumer.startup();
  const got = await receiveAll(consumer, count, 30000, true);
  for (const [id, m] of got) {
    const s = sent.get(id) || fail(`unexpected message ${id}`);
    if (sha(m.body) !== s.digest) fail(`body of message ${s.i} differs`);
    // The Node client reports an absent tag as ''.
    if ((m.tag || undefined) !== s.tag) fail(`tag of message ${s.i}: ${m.tag} != ${s.tag}`);
    if (JSON.stringify(m.keys) !== JSON.stringify(s.keys)) fail(`keys of message ${s.i}`);
    if (m.properties.get('idx') !== String(s.i) || m.properties.get('lang') !== 'node') fail(`properties of message ${s.i}`);
    if (m.deliveryAttempt !== 1) fail(`attempt ${m.deliveryAttempt} on first delivery`);
  }

  // Redelivery: send 6 more, ack 3, the other 3 come back with attempt 2.
  const p2 = new Producer({ endpoints, namespace: '', logger: quiet, topics: [topic] });
  await p2.startup();
  for (let i = 0; i < 6; i++) await p2.send({ topic, body: Buffer.from(`again-${i}`) });
  await p2.shutdown();
  const first = [...(await receiveAll(consumer, 6, 2000, false)).values()];
  for (const m of first.slice(0, 3)) await consumer.ack(m);
  const back = await receiveAll(consumer, 3, 30000, false);
  const expectBack = new Set(first.slice(3).map((m) => m.messageId));
  for (const [id, m] of back) {
    if (!expectBack.has(id)) fail(`message ${id} came back although acked`);
    if (m.deliveryAttempt !== 2) fail(`redelivered with attempt ${m.deliveryAttempt}`);
    await consumer.ack(m);
  }
  await consumer.shutdown();
  console.log(`OK ${count} messages intact, 3 redelivered`);
  process.exit(0);
})().catch((e) => { console.error('FAIL', e && e.stack || e); process.exit(1); });
