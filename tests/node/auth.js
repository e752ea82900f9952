// The official Node.js client (rocketmq-client-nodejs 1.0.8) with credentials.
// Usage: node auth.js <endpoint> <namespace> <topic> <accessKey|-> <secretKey|->
// Sends one message; prints "SENT <message id>" or "ERROR <code> <message>".
const { Producer } = require('rocketmq-client-nodejs');

const [endpoints, namespace, topic, accessKey, accessSecret] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, debug() {}, error() {} };
const options = { endpoints, namespace, logger: quiet };
if (accessKey !== '-') options.sessionCredentials = { accessKey, accessSecret };

(async () => {
  const producer = new Producer(options);
  try {
    await producer.startup();
    const receipt = await producer.send({ topic, body: Buffer.from('hello'), tag: 'auth' });
    console.log(`SENT ${receipt.messageId}`);
  } catch (e) {
    console.log(`ERROR ${e.code ?? ''} ${e.message}`);
  } finally {
    await producer.shutdown().catch(() => {});
  }
})();
