// The web console in headless Chromium (Debian's chromium, driven by playwright-core), with the
// official Node.js client producing and consuming in between: log in, create a topic and a
// group, send, find the message and its trace, watch the group's lag change, download the
// metering CSV; then as the operator, the nodes and tenants. Screenshots go to <shots>.
// Usage: node console.js <http base> <grpc endpoint> <namespace> <ak> <sk> <root ak> <root sk> <shots>
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { Producer, SimpleConsumer } = require('rocketmq-client-nodejs');

const [base, endpoints, namespace, ak, sk, rootAk, rootSk, shots] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, debug() {}, error() {} };
const credentials = { accessKey: ak, accessSecret: sk };
const topic = 'console-orders';
const group = 'console-readers';

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function login(page, key, secret) {
  await page.goto(`${base}/console`);
  check(page.url().endsWith('/console/login'), 'an unauthenticated visit lands on the login form');
  await page.fill('input[name=access_key]', key);
  await page.fill('input[name=secret_key]', secret);
  await Promise.all([page.waitForURL(`${base}/console`), page.click('button[type=submit]')]);
}

async function lag(page) {
  await page.goto(`${base}/console/groups/${group}`);
  return Number(await page.textContent('[data-testid=lag]'));
}

(async () => {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  try {
    // A wrong secret is refused, the right one logs in.
    await page.goto(`${base}/console/login`);
    await shot(page, '01-login');
    await page.fill('input[name=access_key]', ak);
    await page.fill('input[name=secret_key]', 'wrong');
    await page.click('button[type=submit]');
    check((await page.textContent('p.error')).includes('Not logged in'), 'a wrong secret key is refused');
    await login(page, ak, sk);
    check((await page.textContent('[data-testid=namespace]')) === namespace, 'the user works in its own tenant');
    await shot(page, '02-overview-empty');

    // Create a topic and a group from their pages.
    await page.goto(`${base}/console/topics`);
    await page.fill('input[name=name]', topic);
    await page.selectOption('select[name=message_type]', 'NORMAL');
    await page.fill('input[name=queue_count]', '2');
    await Promise.all([page.waitForURL(/done=/), page.click('button:has-text("Create topic")')]);
    check((await page.textContent('[data-testid=done]')).includes(`Topic ${topic} created`), 'the topic is created');
    check((await page.textContent('[data-testid=topics]')).includes(topic), 'the topic is listed');
    await shot(page, '03-topics');
    await page.goto(`${base}/console/groups`);
    await page.fill('input[name=name]', group);
    await Promise.all([page.waitForURL(/done=/), page.click('button:has-text("Create group")')]);
    check((await page.textContent('[data-testid=groups]')).includes(group), 'the group is created');

    // Send through the official client.
    const producer = new Producer({ endpoints, namespace, sessionCredentials: credentials, logger: quiet });
    await producer.startup();
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const receipt = await producer.send({ topic, tag: 'web', keys: [`order-${i}`], body: Buffer.from(`console message ${i}`) });
      ids.push(receipt.messageId);
    }
    await producer.shutdown();

    // Find it by key, open it, read its trace.
    await page.goto(`${base}/console/messages`);
    await page.fill('input[name=topic]', topic);
    await page.fill('input[name=key]', 'order-1');
    await page.click('button:has-text("Search")');
    await page.waitForSelector('[data-testid=results]');
    check((await page.textContent('[data-testid=results]')).includes(ids[1]), 'the key finds the message');
    await shot(page, '04-search');
    await page.click(`text=${ids[1]}`);
    check((await page.textContent('[data-testid=body]')).includes('console message 1'), 'the body is shown');
    // Trace events are written once per trace.flush_interval (1 s): reload until they show.
    let trace = '';
    for (let i = 0; i < 30 && !(trace.includes('sent') && trace.includes('stored')); i++) {
      if (i > 0) await page.waitForTimeout(500);
      await page.reload();
      trace = (await page.$('[data-testid=trace]')) ? await page.textContent('[data-testid=trace]') : '';
    }
    check(trace.includes('sent') && trace.includes('stored'), 'the trace timeline shows it sent and stored');
    await shot(page, '05-message-trace');

    // Consume one: the lag counts the other two; consume them: it reaches 0.
    const consumer = new SimpleConsumer({
      endpoints, namespace, sessionCredentials: credentials, logger: quiet, consumerGroup: group,
      subscriptions: new Map([[topic, '*']]), awaitDuration: 2000,
    });
    await consumer.startup();
    let taken = [];
    while (taken.length === 0) taken = await consumer.receive(1, 30000);
    await consumer.ack(taken[0]);
    const before = await lag(page);
    check(before === 2, `after one of three is consumed the lag is 2 (${before})`);
    check((await page.textContent('main')).includes('consumers on this node'), 'the group page shows its consumers');
    await shot(page, '06-group-lag-2');
    let left = 2;
    const deadline = Date.now() + 30000;
    while (left > 0 && Date.now() < deadline) {
      for (const m of await consumer.receive(32, 30000)) {
        await consumer.ack(m);
        left -= 1;
      }
    }
    const after = await lag(page);
    check(after === 0, `after all are consumed the lag is 0 (${after})`);
    await shot(page, '07-group-lag-0');

    // Reset to the earliest: all three are ahead again (an admin action).
    await page.selectOption('select[name=to]', 'earliest');
    await Promise.all([page.waitForURL(/done=/), page.click('button:has-text("Reset")')]);
    check(Number(await page.textContent('[data-testid=lag]')) === 3, 'a reset to the earliest makes the lag 3');
    await consumer.shutdown();

    // Topic page, overview charts, metering with its CSV.
    await page.goto(`${base}/console/topics/${topic}`);
    check((await page.textContent('[data-testid=topic-messages]')).trim() === '3', 'the topic holds 3 messages');
    await shot(page, '08-topic');
    await page.goto(`${base}/console`);
    // Sampled every second (console.sample_interval): throughput (produced, delivered) and lag.
    check((await page.$$('figure.chart svg polyline')).length === 3, 'the overview draws throughput and lag');
    await shot(page, '09-overview');
    await page.goto(`${base}/console/metering`);
    check((await page.textContent('[data-testid=metering]')).includes('messages_in'), 'metering lists messages in');
    await shot(page, '10-metering');
    const csv = await page.request.get(new URL(await page.getAttribute('[data-testid=csv]', 'href'), base).href);
    const lines = (await csv.text()).split('\n');
    check(csv.status() === 200 && lines[0] === 'namespace,hour,metric,value', 'the CSV downloads');
    check(lines.some((l) => l.startsWith(`${namespace},`) && l.includes(',messages_in,3')), 'the CSV counts the 3 messages');

    // A tenant's admin is not the operator: the nodes page is refused.
    await page.goto(`${base}/console/nodes`);
    check((await page.textContent('[data-testid=error]')).includes('FORBIDDEN'), 'nodes are refused to a tenant user');

    // The operator sees the nodes and the tenants.
    await Promise.all([page.waitForURL(/login/), page.click('button:has-text("Log out")')]);
    await login(page, rootAk, rootSk);
    await page.goto(`${base}/console/nodes`);
    check((await page.textContent('[data-testid=nodes]')).includes('alive'), 'the operator sees the nodes');
    await shot(page, '11-nodes');
    await page.goto(`${base}/console`);
    check((await page.textContent('main')).includes(namespace), 'the operator sees the tenants');
    await page.goto(`${base}/console?ns=${namespace}`);
    check((await page.textContent('[data-testid=topic-count]')).trim() === '1', 'the operator looks into a tenant');
    console.log('CONSOLE OK');
  } catch (e) {
    await shot(page, 'failure').catch(() => {});
    console.error(e.stack || String(e));
    process.exitCode = 1;
  } finally {
    await browser.close();
    // The clients' timers would keep the process alive after a failure.
    process.exit();
  }
})();
