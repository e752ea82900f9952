// Message types with the official Node.js client (rocketmq-client-nodejs 1.0.8).
// Usage: node semantics.js <endpoint>
// Expects topics node-fifo (FIFO), node-delay (DELAY), node-tx (TRANSACTION), node-retry
// (NORMAL) and groups node-fifo-g (FIFO), node-retry-g (max attempts 2), created by the caller,
// and a broker whose first transaction check comes after 1 s.
const { Producer, SimpleConsumer } = require('rocketmq-client-nodejs');
const { TransactionResolution } = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');

const endpoints = process.argv[2];
const quiet = { info() {}, warn() {}, debug() {}, error() {} };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function fail(msg) { throw new Error(msg); }

async function consumer(group, topic, awaitDuration = 2000) {
  const c = new SimpleConsumer({ endpoints, namespace: '', logger: quiet, consumerGroup: group,
    subscriptions: new Map([[topic, '*']]), awaitDuration });
  await c.startup();
  return c;
}

async function receiveN(c, n, invisible = 10000, ack = true, seconds = 60) {
  const got = [];
  const deadline = Date.now() + seconds * 1000;
  while (got.length < n) {
    if (Date.now() > deadline) fail(`only ${got.length} of ${n} arrived`);
    for (const m of await c.receive(32, invisible)) {
      got.push(m);
      if (ack) await c.ack(m);
    }
  }
  return got;
}

async function fifo() {
  const p = new Producer({ endpoints, namespace: '', logger: quiet, topics: ['node-fifo'] });
  await p.startup();
  for (let i = 0; i < 5; i++) {
    for (let g = 0; g < 10; g++) {
      await p.send({ topic: 'node-fifo', messageGroup: `g${g}`, body: Buffer.from(`g${g}:${i}`) });
    }
  }
  await p.shutdown();
  const c = await consumer('node-fifo-g', 'node-fifo');
  const next = new Map();
  let received = 0;
  const deadline = Date.now() + 60000;
  while (received < 50) {
    if (Date.now() > deadline) fail(`FIFO: ${received} of 50`);
    const batch = await c.receive(32, 10000);
    const groups = new Set(batch.map((m) => m.messageGroup));
    if (groups.size < batch.length) fail('two messages of one group in one batch');
    for (const m of batch) {
      const [g, i] = m.body.toString().split(':');
      if (Number(i) !== (next.get(g) || 0)) fail(`${g}: got ${i}, expected ${next.get(g) || 0}`);
      next.set(g, Number(i) + 1);
      await c.ack(m);
      received++;
    }
  }
  await c.shutdown();
}

async function delay() {
  const p = new Producer({ endpoints, namespace: '', logger: quiet, topics: ['node-delay'] });
  await p.startup();
  const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2000);
  await p.send({ topic: 'node-delay', body: Buffer.from('later'), deliveryTimestamp: at });
  const recalled = await p.send({ topic: 'node-delay', body: Buffer.from('recalled'),
    deliveryTimestamp: new Date(Date.now() + 3600 * 1000) });
  const r = await p.recallMessage('node-delay', recalled.recallHandle);
  if (r.messageId !== recalled.messageId) fail(`recalled ${r.messageId}, sent ${recalled.messageId}`);
  await p.shutdown();
  const c = await consumer('node-delay-g', 'node-delay');
  const [m] = await receiveN(c, 1);
  if (m.body.toString() !== 'later') fail(`delay: got ${m.body}`);
  if (Date.now() < at.getTime()) fail('delay: delivered early');
  await c.shutdown();
}

async function transactions() {
  const checker = { async check(view) {
    return view.body.toString() === 'orphan' ? TransactionResolution.COMMIT : TransactionResolution.ROLLBACK;
  } };
  const p = new Producer({ endpoints, namespace: '', logger: quiet, topics: ['node-tx'], checker });
  await p.startup();
  const half = async (body) => {
    const t = p.beginTransaction();
    await p.send({ topic: 'node-tx', body: Buffer.from(body) }, t);
    return t;
  };
  await (await half('committed')).commit();
  await (await half('rolled back')).rollback();
  await half('orphan'); // resolved by the checker when the broker asks
  const c = await consumer('node-tx-g', 'node-tx');
  const got = (await receiveN(c, 2, 10000, true, 30)).map((m) => m.body.toString()).sort();
  if (JSON.stringify(got) !== JSON.stringify(['committed', 'orphan'])) fail(`transactions: ${got}`);
  await c.shutdown();
  await p.shutdown();
}

async function deadLetters() {
  const p = new Producer({ endpoints, namespace: '', logger: quiet, topics: ['node-retry'] });
  await p.startup();
  const sent = await p.send({ topic: 'node-retry', body: Buffer.from('never acked') });
  await p.shutdown();
  const c = await consumer('node-retry-g', 'node-retry', 1000);
  const attempts = (await receiveN(c, 2, 1000, false)).map((m) => m.deliveryAttempt);
  if (JSON.stringify(attempts) !== '[1,2]') fail(`attempts ${attempts}`);
  await c.shutdown();
  const d = await consumer('node-dlq-reader', '%DLQ%node-retry-g');
  const [m] = await receiveN(d, 1);
  if (m.messageId !== sent.messageId) fail('the dead letter is the message sent');
  await d.shutdown();
}

(async () => {
  await fifo();
  await delay();
  await transactions();
  await deadLetters();
  console.log('OK fifo, delay, recall, transactions, dead letters');
  process.exit(0);
})().catch((e) => { console.error('FAIL', e && e.stack || e); process.exit(1); });
