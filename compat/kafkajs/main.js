// kafkajs against odradek, for the compatibility tests in tests/compat_clients/test_kafkajs.py.
// One subcommand per client role; every result is one JSON line on standard output, and any
// client error is a line {"event":"error",...} followed by exit 1, so that a test sees failures
// instead of silence. Run by compat/node_programs.py's command() (NODE_PATH = its npm ci cache).
//
//   node main.js produce --bootstrap B --topic T --codec C [--idempotent]
//       reads records, one JSON object a line, from standard input:
//       {"partition":0,"key":<base64|null>,"value":<base64|null>,"headers":[[<base64>,<base64>]],"timestamp":<ms>}
//       sends them in one producer.send with acks=-1 and prints
//       {"event":"acked","index":i,"partition":p,"offset":o} for each, in input order (kafkajs
//       answers each partition's base offset; a record's offset is that plus its place among
//       the partition's records in the request, the order in which kafkajs batches them).
//   node main.js consume --bootstrap B --topic T --group G --count K
//       a consumer in its own group G reads T from the beginning until K records arrived,
//       printing {"event":"record","partition":p,"offset":o,"key":...,"value":...,"headers":...,"timestamp":ms}.
//   node main.js group --bootstrap B --topic T --group G [--client-id C]
//       a consumer group member (kafkajs's round-robin assigner, its only built-in one):
//       an "assigned" line on every GROUP_JOIN, a "record" line per record and a commit of
//       each record (auto-commit off, so the test knows what is committed); it disconnects
//       (commits, LeaveGroup) when standard input closes.
//   node main.js admin --bootstrap B --topic T
//       the admin client: create T (3 partitions, retention.ms), list, fetchTopicMetadata,
//       describeConfigs, alterConfigs, describeCluster, createPartitions to 5,
//       fetchTopicOffsets (and by timestamp) after a produce, deleteTopicRecords, deleteTopics;
//       one line per step.
//   node main.js txn --bootstrap B --transactional-id ID [--transaction-timeout MS]
//       a transactional producer (idempotent, one request in flight) driven by commands on
//       standard input, one a line: "init" (connect, then InitProducerId with the transactional
//       id through a first, empty transaction), "begin"
//       (producer.transaction()), "send TOPIC PARTITION VALUE" (transaction.send, acks=-1),
//       "offsets GROUP TOPIC PARTITION OFFSET" (transaction.sendOffsets), "commit", "abort".
//       Each is answered {"event":"done","op":...} (send adds "offset") or
//       {"event":"failed","op":...,"error":name,"type":kafka_error_name|null,"code":kafka_error_code|null};
//       a failure does not end the program, so the test sees what the next operation answers.
//       It exits when standard input closes.
//   node main.js read --bootstrap B --topics T:N,U:M --isolation committed|uncommitted --until VALUE --group G
//       a consumer in its own group G (kafkajs reads only through a group) reads T (and U...)
//       from the beginning with that isolation level until each of the partitions 0..N-1
//       delivered a record whose value is VALUE; one
//       {"event":"record","topic":t,"partition":p,"offset":o,"value":v} line per record.
//
// Codecs: none and gzip are kafkajs's own; snappy (kafkajs-snappy) and lz4 (kafkajs-lz4) are
// registered from their npm codec packages. zstd is not: @kafkajs/zstd's native dependency does
// not build on current Node.
'use strict';

const { Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
const LZ4Codec = require('kafkajs-lz4');

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;

const CODECS = {
  none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
};

function emit(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

function fail(step, error) {
  emit({ event: 'error', step, error: String(error && error.stack ? error.stack : error) });
  process.exit(1);
}

function parseArguments(argv) {
  const options = { bootstrap: '127.0.0.1:9092', clientId: 'odradek-kafkajs', codec: 'none', idempotent: false };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    if (name === '--idempotent') { options.idempotent = true; continue; }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${name} needs a value`);
    switch (name) {
      case '--bootstrap': options.bootstrap = value; break;
      case '--topic': options.topic = value; break;
      case '--group': options.group = value; break;
      case '--client-id': options.clientId = value; break;
      case '--codec': options.codec = value; break;
      case '--count': options.count = Number(value); break;
      case '--transactional-id': options.transactionalId = value; break;
      case '--transaction-timeout': options.transactionTimeout = Number(value); break;
      case '--topics': options.topics = value; break;
      case '--isolation': options.isolation = value; break;
      case '--until': options.until = value; break;
      default: throw new Error(`unknown option ${name}`);
    }
  }
  return options;
}

// kafkajs logs to standard error (standard output carries only the JSON events).
const logCreator = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log;
  process.stderr.write(`[${label}] ${namespace} ${message} ${JSON.stringify(extra)}\n`);
};

function client(options) {
  return new Kafka({
    clientId: options.clientId, brokers: [options.bootstrap], logLevel: logLevel.INFO, logCreator,
    retry: { retries: 5, initialRetryTime: 100 },
  });
}

const fromBase64 = (text) => (text === null ? null : Buffer.from(text, 'base64'));
const toBase64 = (buffer) => (buffer === null || buffer === undefined ? null : Buffer.from(buffer).toString('base64'));

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// A list of [key, value] pairs as kafkajs's headers object: a repeated key becomes an array,
// which kafkajs writes as consecutive headers (so the pairs must keep a key's values together).
function headersObject(pairs) {
  const headers = {};
  for (const [key, value] of pairs) {
    const name = fromBase64(key).toString('utf8');
    const buffer = fromBase64(value);
    if (!(name in headers)) headers[name] = buffer;
    else if (Array.isArray(headers[name])) headers[name].push(buffer);
    else headers[name] = [headers[name], buffer];
  }
  return headers;
}

function headerPairs(headers) {
  const pairs = [];
  for (const [name, value] of Object.entries(headers || {})) {
    for (const item of Array.isArray(value) ? value : [value]) pairs.push([toBase64(Buffer.from(name)), toBase64(item)]);
  }
  return pairs;
}

function recordEvent(partition, message) {
  return {
    event: 'record', partition, offset: Number(message.offset), key: toBase64(message.key),
    value: toBase64(message.value), headers: headerPairs(message.headers), timestamp: Number(message.timestamp),
  };
}

async function produce(options) {
  if (!(options.codec in CODECS)) throw new Error(`unknown codec ${options.codec}`);
  const records = (await readStdin()).split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line));
  const producer = client(options).producer({
    idempotent: options.idempotent, maxInFlightRequests: options.idempotent ? 1 : undefined,
  });
  await producer.connect();
  const messages = records.map((record) => ({
    partition: record.partition, key: fromBase64(record.key), value: fromBase64(record.value),
    headers: headersObject(record.headers), timestamp: String(record.timestamp),
  }));
  const answers = await producer.send({
    topic: options.topic, acks: -1, compression: CODECS[options.codec], messages,
  });
  const baseOffsets = new Map(answers.map((answer) => {
    if (answer.errorCode !== 0) throw new Error(`partition ${answer.partition}: error ${answer.errorCode}`);
    return [answer.partition, Number(answer.baseOffset)];
  }));
  const placed = new Map();
  records.forEach((record, index) => {
    const place = placed.get(record.partition) || 0;
    placed.set(record.partition, place + 1);
    emit({ event: 'acked', index, partition: record.partition, offset: baseOffsets.get(record.partition) + place });
  });
  await producer.disconnect();
}

async function consume(options) {
  const consumer = client(options).consumer({
    groupId: options.group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 500,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [options.topic], fromBeginning: true });
  let received = 0;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received} of ${options.count} records in 30 s`)), 30000);
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (received >= options.count) return;
        emit(recordEvent(partition, message));
        received += 1;
        if (received === options.count) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
}

async function group(options) {
  const consumer = client(options).consumer({
    groupId: options.group, sessionTimeout: 10000, heartbeatInterval: 300, retry: { retries: 5 },
    // kafkajs heartbeats between fetches: a shorter long poll than its 5 s lets a member
    // notice a rebalance (and disconnect) sooner.
    maxWaitTimeInMs: 500,
  });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const partitions = (payload.memberAssignment[options.topic] || []).slice().sort((a, b) => a - b);
    emit({ event: 'assigned', partitions, member_id: payload.memberId, protocol: payload.groupProtocol });
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => fail('group', payload.error));
  await consumer.connect();
  await consumer.subscribe({ topics: [options.topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      emit(recordEvent(partition, message));
      await consumer.commitOffsets([{ topic, partition, offset: String(BigInt(message.offset) + 1n) }]);
    },
  });
  await readStdin(); // returns when the test closes our standard input
  await consumer.disconnect();
  emit({ event: 'closed' });
}

async function admin(options) {
  const kafka = client(options);
  const adminClient = kafka.admin();
  await adminClient.connect();
  const topic = options.topic;
  const definition = {
    topic, numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }],
  };
  emit({ event: 'created', result: await adminClient.createTopics({ topics: [definition], waitForLeaders: true }) });
  emit({ event: 'created again', result: await adminClient.createTopics({ topics: [definition], waitForLeaders: true }) });
  emit({ event: 'listed', found: (await adminClient.listTopics()).includes(topic) });

  const metadata = await adminClient.fetchTopicMetadata({ topics: [topic] });
  const described = metadata.topics[0];
  emit({
    event: 'described', name: described.name,
    partitions: described.partitions.map((p) => ({ partition: p.partitionId, leader: p.leader, error: p.partitionErrorCode }))
      .sort((a, b) => a.partition - b.partition),
  });

  const configs = await adminClient.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'cleanup.policy'] }],
    includeSynonyms: false,
  });
  const entries = Object.fromEntries(configs.resources[0].configEntries.map((entry) => [entry.configName, entry.configValue]));
  emit({ event: 'configs', error: configs.resources[0].errorCode, ...entries });

  // alterConfigs replaces the topic's whole set.
  await adminClient.alterConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }],
  });
  const altered = await adminClient.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }], includeSynonyms: false,
  });
  emit({ event: 'altered', 'retention.ms': altered.resources[0].configEntries[0].configValue });

  const cluster = await adminClient.describeCluster();
  emit({ event: 'cluster', brokers: cluster.brokers.map((b) => `${b.host}:${b.port}`), controller: cluster.controller });

  await adminClient.createPartitions({ topicPartitions: [{ topic, count: 5 }] });
  const grown = await adminClient.fetchTopicMetadata({ topics: [topic] });
  emit({ event: 'grown', partitions: grown.topics[0].partitions.length });

  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: [0, 1, 2].map((i) => ({ partition: 4, value: `v${i}`, timestamp: String(1700000000000 + i) })) });
  await producer.disconnect();
  const offsets = await adminClient.fetchTopicOffsets(topic);
  emit({
    event: 'offsets',
    partitions: offsets.map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high), offset: Number(o.offset) }))
      .sort((a, b) => a.partition - b.partition),
  });
  const byTime = await adminClient.fetchTopicOffsetsByTimestamp(topic, 1700000000001);
  emit({ event: 'offsets by time', partitions: byTime.map((o) => ({ partition: o.partition, offset: Number(o.offset) }))
    .sort((a, b) => a.partition - b.partition) });

  await adminClient.deleteTopicRecords({ topic, partitions: [{ partition: 4, offset: '2' }] });
  const trimmed = (await adminClient.fetchTopicOffsets(topic)).find((o) => o.partition === 4);
  emit({ event: 'records deleted', low: Number(trimmed.low), high: Number(trimmed.high) });

  await adminClient.deleteTopics({ topics: [topic] });
  emit({ event: 'deleted', 'still listed': (await adminClient.listTopics()).includes(topic) });
  try {
    await adminClient.deleteTopics({ topics: [topic] });
    emit({ event: 'deleted again', error: null });
  } catch (error) {
    emit({ event: 'deleted again', error: error.name, cause: error.cause && error.cause.type });
  }
  await adminClient.disconnect();
}

// The Kafka error inside a kafkajs error (a retrier wraps the last one as its cause).
function failure(op, error) {
  let kafkaError = error;
  while (kafkaError && kafkaError.code === undefined && kafkaError.cause) kafkaError = kafkaError.cause;
  return {
    event: 'failed', op, error: error.name, message: error.message,
    type: (kafkaError && kafkaError.type) || null, code: kafkaError && kafkaError.code !== undefined ? kafkaError.code : null,
  };
}

async function* stdinLines() {
  let buffered = '';
  for await (const chunk of process.stdin) {
    buffered += chunk.toString('utf8');
    let end;
    while ((end = buffered.indexOf('\n')) >= 0) {
      yield buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
    }
  }
  if (buffered) yield buffered;
}

async function txn(options) {
  const producer = client(options).producer({
    transactionalId: options.transactionalId, idempotent: true, maxInFlightRequests: 1,
    transactionTimeout: options.transactionTimeout || 60000,
  });
  let transaction = null;
  for await (const line of stdinLines()) {
    const fields = line.trim().split(/\s+/);
    if (!fields[0]) continue;
    const [op] = fields;
    const answer = { event: 'done', op };
    try {
      if (op === 'init') {
        // connect's InitProducerId is the idempotent one (no transactional id); kafkajs sends
        // the transactional one at the first transaction(). An abort of a transaction that
        // touched nothing sends no EndTxn and leaves the producer ready.
        await producer.connect();
        await (await producer.transaction()).abort();
      } else if (op === 'begin') {
        transaction = await producer.transaction();
      } else if (op === 'send' && fields.length === 4) {
        const [result] = await transaction.send({
          topic: fields[1], acks: -1, messages: [{ partition: Number(fields[2]), value: fields[3] }],
        });
        answer.offset = Number(result.baseOffset);
      } else if (op === 'offsets' && fields.length === 5) {
        await transaction.sendOffsets({
          consumerGroupId: fields[1], topics: [{ topic: fields[2], partitions: [{ partition: Number(fields[3]), offset: fields[4] }] }],
        });
      } else if (op === 'commit') {
        await transaction.commit();
      } else if (op === 'abort') {
        await transaction.abort();
      } else {
        throw new Error(`bad command ${JSON.stringify(line)}`);
      }
      emit(answer);
    } catch (error) {
      if (error.message.startsWith('bad command')) throw error;
      emit(failure(op, error));
    }
  }
  await producer.disconnect();
}

async function read(options) {
  const topics = options.topics.split(',').map((item) => {
    const [topic, count] = item.split(':');
    return { topic, count: Number(count) };
  });
  const waiting = new Set(topics.flatMap(({ topic, count }) => [...Array(count).keys()].map((p) => `${topic}/${p}`)));
  if (!['committed', 'uncommitted'].includes(options.isolation)) throw new Error(`bad --isolation ${options.isolation}`);
  const consumer = client(options).consumer({
    groupId: options.group, readUncommitted: options.isolation === 'uncommitted', sessionTimeout: 10000,
    heartbeatInterval: 500, maxWaitTimeInMs: 500,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: topics.map(({ topic }) => topic), fromBeginning: true });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${options.until} yet on ${[...waiting]} in 30 s`)), 30000);
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        const value = message.value === null ? null : message.value.toString('utf8');
        emit({ event: 'record', topic, partition, offset: Number(message.offset), value });
        if (value === options.until) waiting.delete(`${topic}/${partition}`);
        if (waiting.size === 0) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
}

const COMMANDS = { produce, consume, group, admin, txn, read };
const NEEDS_TOPIC = new Set(['produce', 'consume', 'group', 'admin']);

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  if (!(command in COMMANDS)) {
    process.stderr.write('usage: node main.js produce|consume|group|admin|txn|read [options]\n');
    process.exit(2);
  }
  const options = parseArguments(rest);
  if (NEEDS_TOPIC.has(command) && !options.topic) throw new Error('--topic is required');
  await COMMANDS[command](options);
}

main().then(() => process.exit(0), (error) => fail('main', error));
