// LiteTopic with the official Node.js client (rocketmq-client-nodejs 1.0.8): a LitePushConsumer
// subscribes to two lite topics and receives each in send order; an unsubscribed one never.
// Usage: node lite.js <endpoint>   (expects the LITE topic `node-chat`, created by the caller)
const { Producer, LitePushConsumerBuilder, ConsumeResult } = require('rocketmq-client-nodejs');

const endpoints = process.argv[2];
const quiet = { info() {}, warn() {}, debug() {}, error() {} };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function fail(msg) { throw new Error(msg); }

async function main() {
  const seen = new Map();
  const consumer = await new LitePushConsumerBuilder()
    .setClientConfiguration({ endpoints, namespace: '', logger: quiet })
    .setConsumerGroup('node-agents')
    .bindTopic('node-chat')
    .setMessageListener({
      consume(m) {
        if (!seen.has(m.liteTopic)) seen.set(m.liteTopic, []);
        seen.get(m.liteTopic).push(m.body.toString());
        return ConsumeResult.SUCCESS;
      },
    })
    .build();
  // The quota arrives with the settings, a moment after start-up.
  for (const lite of ['conv-1', 'conv-2']) {
    for (let tries = 0; ; tries++) {
      try {
        await consumer.subscribeLite(lite);
        break;
      } catch (e) {
        if (tries > 100) throw e;
        await sleep(100);
      }
    }
  }
  const p = new Producer({ endpoints, namespace: '', logger: quiet, topics: ['node-chat'] });
  await p.startup();
  const expected = [];
  for (let i = 0; i < 20; i++) {
    for (const lite of ['conv-1', 'conv-2', 'conv-3']) {
      await p.send({ topic: 'node-chat', liteTopic: lite, body: Buffer.from(`${lite}:${i}`) });
      if (lite !== 'conv-3') expected.push(`${lite}:${i}`);
    }
  }
  await p.shutdown();
  const deadline = Date.now() + 60000;
  const count = () => [...seen.values()].reduce((n, v) => n + v.length, 0);
  while (count() < expected.length) {
    if (Date.now() > deadline) fail(`only ${count()} of ${expected.length}: ${JSON.stringify([...seen])}`);
    await sleep(100);
  }
  for (const lite of ['conv-1', 'conv-2']) {
    const want = [...Array(20).keys()].map((i) => `${lite}:${i}`);
    if (JSON.stringify(seen.get(lite)) !== JSON.stringify(want)) fail(`${lite}: ${seen.get(lite)}`);
  }
  if (seen.has('conv-3')) fail('conv-3 was not subscribed');
  await consumer.shutdown();
  console.log(`OK lite ${expected.length} messages in order`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
