// Command sarama drives IBM/sarama, Go's other widely used Kafka client, against odradek for
// the compatibility tests in tests/broker/test_sarama.py. One subcommand per client role;
// every result is one JSON line on standard output, and any client error is a line
// {"event":"error",...} followed by exit 1, so that a test sees failures instead of silence.
//
//	sarama produce -bootstrap B -topic T -codec C [-idempotent] [-version V]
//	    reads records, one JSON object a line, from standard input:
//	    {"partition":0,"key":<base64|null>,"value":<base64|null>,"headers":[[<base64>,<base64>]],"timestamp":<ms>}
//	    sends them all with acks=all through a SyncProducer (manual partitioner), and prints
//	    {"event":"acked","index":i,"partition":p,"offset":o} for each, in input order.
//	sarama consume -bootstrap B -topic T -partitions N -count K [-version V]
//	    reads partitions 0..N-1 from the oldest offset until K records arrived, printing each as
//	    {"event":"record","partition":p,"offset":o,"key":...,"value":...,"headers":...,"timestamp":ms};
//	    with -offset-time MS, then {"event":"offsets","partition":p,"for time":o,"oldest":o,"newest":o}
//	    for each partition (ListOffsets through Client.GetOffset).
//	sarama group -bootstrap B -topic T -group G -strategy range|roundrobin|sticky [-version V]
//	    a consumer group member: "assigned" lines after each rebalance, a "record" line per
//	    record, and a synchronous commit after every record (auto-commit off, so the test knows
//	    what is committed). It leaves the group (LeaveGroup, via Close) when standard input closes.
//	sarama admin -bootstrap B -topic T [-version V]
//	    ClusterAdmin: create T (3 partitions, retention.ms=3600000), list, describe the topic,
//	    its config and the cluster, AlterConfigs and (from version 2.3) IncrementalAlterConfigs,
//	    grow it to 5 partitions (from version 1.0, which brought CreatePartitions), produce 3
//	    records and DeleteRecords below offset 2, DescribeLogDirs (from 1.0), delete it; one line
//	    per step.
//	sarama txn ... and sarama read ...
//	    a transactional producer driven by commands and a read_committed / read_uncommitted
//	    reader: see transactions.go.
//
// -version is a Kafka version Sarama knows ("4.3.1", "0.11.0.0") or "default", which leaves
// Sarama's own default (sarama.DefaultVersion) in place: the protocol versions it speaks follow.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// record is the JSON shape shared with the Python tests; []byte encodes as base64 and nil as null.
type record struct {
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       []byte      `json:"key"`
	Value     []byte      `json:"value"`
	Headers   [][2][]byte `json:"headers"`
	Timestamp int64       `json:"timestamp"`
}

var (
	outputMu sync.Mutex
	output   = json.NewEncoder(os.Stdout)
)

func emit(fields map[string]any) {
	outputMu.Lock()
	defer outputMu.Unlock()
	if err := output.Encode(fields); err != nil {
		panic(err)
	}
}

func fail(step string, err error) {
	emit(map[string]any{"event": "error", "step": step, "error": err.Error()})
	os.Exit(1)
}

func newConfig(version, clientID string) *sarama.Config {
	config := sarama.NewConfig()
	config.ClientID = clientID
	if version != "default" {
		parsed, err := sarama.ParseKafkaVersion(version)
		if err != nil {
			fail("config", err)
		}
		config.Version = parsed
	}
	config.Metadata.Retry.Backoff = 100 * time.Millisecond
	return config
}

var codecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func produce(bootstrap []string, topic, codec string, idempotent bool, config *sarama.Config) {
	compression, known := codecs[codec]
	if !known {
		fail("config", fmt.Errorf("unknown codec %q", codec))
	}
	config.Producer.Compression = compression
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewManualPartitioner
	if idempotent {
		config.Producer.Idempotent = true
		config.Net.MaxOpenRequests = 1 // Sarama's requirement for idempotence
	}
	var messages []*sarama.ProducerMessage
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for scanner.Scan() {
		var input record
		if err := json.Unmarshal(scanner.Bytes(), &input); err != nil {
			fail("input", err)
		}
		message := &sarama.ProducerMessage{Topic: topic, Partition: input.Partition,
			Timestamp: time.UnixMilli(input.Timestamp)}
		if input.Key != nil {
			message.Key = sarama.ByteEncoder(input.Key)
		}
		if input.Value != nil {
			message.Value = sarama.ByteEncoder(input.Value)
		}
		for _, header := range input.Headers {
			message.Headers = append(message.Headers, sarama.RecordHeader{Key: header[0], Value: header[1]})
		}
		messages = append(messages, message)
	}
	if err := scanner.Err(); err != nil {
		fail("input", err)
	}
	producer, err := sarama.NewSyncProducer(bootstrap, config)
	if err != nil {
		fail("connect", err)
	}
	if err := producer.SendMessages(messages); err != nil {
		var failures sarama.ProducerErrors
		if errors.As(err, &failures) && len(failures) > 0 {
			err = fmt.Errorf("%d of %d failed, first: %w", len(failures), len(messages), failures[0].Err)
		}
		fail("send", err)
	}
	for index, message := range messages {
		emit(map[string]any{"event": "acked", "index": index, "partition": message.Partition, "offset": message.Offset})
	}
	if err := producer.Close(); err != nil {
		fail("close", err)
	}
}

func asRecord(message *sarama.ConsumerMessage) record {
	headers := [][2][]byte{}
	for _, header := range message.Headers {
		headers = append(headers, [2][]byte{header.Key, header.Value})
	}
	return record{Partition: message.Partition, Offset: message.Offset, Key: message.Key, Value: message.Value,
		Headers: headers, Timestamp: message.Timestamp.UnixMilli()}
}

func emitRecord(message *sarama.ConsumerMessage) {
	r := asRecord(message)
	emit(map[string]any{"event": "record", "partition": r.Partition, "offset": r.Offset, "key": r.Key,
		"value": r.Value, "headers": r.Headers, "timestamp": r.Timestamp})
}

func consume(bootstrap []string, topic string, partitions, count int, timeout time.Duration, offsetTime int64,
	config *sarama.Config) {
	config.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumer(bootstrap, config)
	if err != nil {
		fail("connect", err)
	}
	messages := make(chan *sarama.ConsumerMessage)
	errs := make(chan error, partitions)
	var readers []sarama.PartitionConsumer
	for partition := 0; partition < partitions; partition++ {
		reader, err := consumer.ConsumePartition(topic, int32(partition), sarama.OffsetOldest)
		if err != nil {
			fail("consume", err)
		}
		readers = append(readers, reader)
		go func() {
			for message := range reader.Messages() {
				messages <- message
			}
		}()
		go func() {
			for err := range reader.Errors() {
				errs <- err
			}
		}()
	}
	deadline := time.After(timeout)
	for received := 0; received < count; received++ {
		select {
		case message := <-messages:
			emitRecord(message)
		case err := <-errs:
			fail("consume", err)
		case <-deadline:
			fail("consume", fmt.Errorf("only %d of %d records within %s", received, count, timeout))
		}
	}
	for _, reader := range readers {
		reader.AsyncClose()
	}
	if err := consumer.Close(); err != nil {
		fail("close", err)
	}
	if offsetTime < 0 {
		return
	}
	client, err := sarama.NewClient(bootstrap, config)
	if err != nil {
		fail("connect", err)
	}
	defer client.Close()
	for partition := int32(0); partition < int32(partitions); partition++ {
		offsets := map[string]any{"event": "offsets", "partition": partition}
		for name, at := range map[string]int64{"for time": offsetTime, "oldest": sarama.OffsetOldest,
			"newest": sarama.OffsetNewest} {
			offset, err := client.GetOffset(topic, partition, at)
			if err != nil {
				fail("offsets", err)
			}
			offsets[name] = offset
		}
		emit(offsets)
	}
}

// member implements sarama.ConsumerGroupHandler.
type member struct{}

func (member) Setup(session sarama.ConsumerGroupSession) error {
	var partitions []int32
	for _, claimed := range session.Claims() {
		partitions = append(partitions, claimed...)
	}
	sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
	emit(map[string]any{"event": "assigned", "partitions": partitions, "generation": session.GenerationID(),
		"member_id": session.MemberID()})
	return nil
}

func (member) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (member) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for message := range claim.Messages() {
		emitRecord(message)
		session.MarkMessage(message, "")
		session.Commit()
	}
	return nil
}

var strategies = map[string]func() sarama.BalanceStrategy{
	"range": sarama.NewBalanceStrategyRange, "roundrobin": sarama.NewBalanceStrategyRoundRobin,
	"sticky": sarama.NewBalanceStrategySticky,
}

func group(bootstrap []string, topic, groupID, strategy string, config *sarama.Config) {
	newStrategy, known := strategies[strategy]
	if !known {
		fail("config", fmt.Errorf("unknown strategy %q", strategy))
	}
	config.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{newStrategy()}
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.AutoCommit.Enable = false
	config.Consumer.Group.Session.Timeout = 10 * time.Second
	config.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	// The second member's join makes the first one's SyncGroup answer REBALANCE_IN_PROGRESS;
	// Sarama waits this long before rejoining (2 s by default).
	config.Consumer.Group.Rebalance.Retry.Backoff = 200 * time.Millisecond
	config.Consumer.Return.Errors = true
	consumerGroup, err := sarama.NewConsumerGroup(bootstrap, groupID, config)
	if err != nil {
		fail("connect", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin) // returns when the test closes our standard input
		cancel()
	}()
	go func() {
		for err := range consumerGroup.Errors() {
			fail("group", err)
		}
	}()
	for ctx.Err() == nil {
		if err := consumerGroup.Consume(ctx, []string{topic}, member{}); err != nil && ctx.Err() == nil {
			fail("consume", err)
		}
	}
	if err := consumerGroup.Close(); err != nil {
		fail("close", err)
	}
	emit(map[string]any{"event": "closed"})
}

func admin(bootstrap []string, topic string, config *sarama.Config) {
	config.Producer.Return.Successes = true
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Partitioner = sarama.NewManualPartitioner
	client, err := sarama.NewClient(bootstrap, config)
	if err != nil {
		fail("connect", err)
	}
	clusterAdmin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		fail("connect", err)
	}
	retention := "3600000"
	detail := &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention}}
	if err := clusterAdmin.CreateTopic(topic, detail, false); err != nil {
		fail("create", err)
	}
	emit(map[string]any{"event": "created"})
	err = clusterAdmin.CreateTopic(topic, detail, false)
	emit(map[string]any{"event": "created again", "error": errorText(err)})

	topics, err := clusterAdmin.ListTopics()
	if err != nil {
		fail("list", err)
	}
	listed, found := topics[topic]
	emit(map[string]any{"event": "listed", "found": found, "partitions": listed.NumPartitions})

	described, err := clusterAdmin.DescribeTopics([]string{topic})
	if err != nil {
		fail("describe", err)
	}
	var leaders []int32
	for _, partition := range described[0].Partitions {
		leaders = append(leaders, partition.Leader)
	}
	emit(map[string]any{"event": "described", "name": described[0].Name, "error": errorText(described[0].Err),
		"partitions": len(described[0].Partitions), "leaders": leaders})

	entries, err := clusterAdmin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		fail("describe config", err)
	}
	configs := map[string]string{}
	for _, entry := range entries {
		configs[entry.Name] = entry.Value
	}
	emit(map[string]any{"event": "configs", "retention.ms": configs["retention.ms"],
		"cleanup.policy": configs["cleanup.policy"]})

	// AlterConfigs replaces the topic's whole set; IncrementalAlterConfigs (from 2.3) edits it.
	longer := "7200000"
	if err := clusterAdmin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": &longer}, false); err != nil {
		fail("alter config", err)
	}
	emit(map[string]any{"event": "altered", "retention.ms": topicConfig(clusterAdmin, topic, "retention.ms")})
	if config.Version.IsAtLeast(sarama.V2_3_0_0) {
		entries := map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationDelete},
			"segment.ms":   {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &longer},
		}
		if err := clusterAdmin.IncrementalAlterConfig(sarama.TopicResource, topic, entries, false); err != nil {
			fail("incremental alter config", err)
		}
		emit(map[string]any{"event": "incrementally altered", "retention.ms": topicConfig(clusterAdmin, topic, "retention.ms"),
			"segment.ms": topicConfig(clusterAdmin, topic, "segment.ms")})
	}

	brokers, controller, err := clusterAdmin.DescribeCluster()
	if err != nil {
		fail("describe cluster", err)
	}
	var addresses []string
	for _, broker := range brokers {
		addresses = append(addresses, broker.Addr())
	}
	emit(map[string]any{"event": "cluster", "brokers": addresses, "controller": controller})

	if config.Version.IsAtLeast(sarama.V1_0_0_0) { // CreatePartitions came with Kafka 1.0
		if err := clusterAdmin.CreatePartitions(topic, 5, nil, false); err != nil {
			fail("create partitions", err)
		}
		described, err = clusterAdmin.DescribeTopics([]string{topic})
		if err != nil {
			fail("describe", err)
		}
		emit(map[string]any{"event": "grown", "partitions": len(described[0].Partitions)})
	}

	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		fail("producer", err)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0,
			Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
			fail("send", err)
		}
	}
	if err := producer.Close(); err != nil {
		fail("producer close", err)
	}
	if err := clusterAdmin.DeleteRecords(topic, map[int32]int64{0: 2}); err != nil {
		fail("delete records", err)
	}
	oldest, err := client.GetOffset(topic, 0, sarama.OffsetOldest)
	if err != nil {
		fail("offsets", err)
	}
	newest, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		fail("offsets", err)
	}
	emit(map[string]any{"event": "records deleted", "oldest": oldest, "newest": newest})

	if config.Version.IsAtLeast(sarama.V1_0_0_0) { // DescribeLogDirs came with Kafka 1.0
		logDirs, err := clusterAdmin.DescribeLogDirs([]int32{controller})
		if err != nil {
			fail("describe log dirs", err)
		}
		var paths []string
		sizes := map[string]int64{}
		for _, dir := range logDirs[controller] {
			if !errors.Is(dir.ErrorCode, sarama.ErrNoError) {
				fail("describe log dirs", dir.ErrorCode)
			}
			paths = append(paths, dir.Path)
			for _, described := range dir.Topics {
				if described.Topic == topic {
					for _, partition := range described.Partitions {
						sizes[fmt.Sprint(partition.PartitionID)] = partition.Size
					}
				}
			}
		}
		emit(map[string]any{"event": "log dirs", "paths": paths, "sizes": sizes})
	}

	if err := clusterAdmin.DeleteTopic(topic); err != nil {
		fail("delete", err)
	}
	topics, err = clusterAdmin.ListTopics()
	if err != nil {
		fail("list", err)
	}
	_, found = topics[topic]
	emit(map[string]any{"event": "deleted", "still listed": found})
	err = clusterAdmin.DeleteTopic(topic)
	emit(map[string]any{"event": "deleted again", "error": errorText(err)})
	if err := clusterAdmin.Close(); err != nil {
		fail("close", err)
	}
}

func topicConfig(clusterAdmin sarama.ClusterAdmin, topic, name string) string {
	entries, err := clusterAdmin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic,
		ConfigNames: []string{name}})
	if err != nil {
		fail("describe config", err)
	}
	for _, entry := range entries {
		if entry.Name == name {
			return entry.Value
		}
	}
	fail("describe config", fmt.Errorf("no %s in %v", name, entries))
	return ""
}

func errorText(err error) any {
	if err == nil || errors.Is(err, sarama.ErrNoError) {
		return nil
	}
	var kafkaError sarama.KError
	if errors.As(err, &kafkaError) {
		return kafkaError.Error()
	}
	return err.Error()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sarama produce|consume|group|admin|txn|read [flags]")
		os.Exit(2)
	}
	command := os.Args[1]
	flags := flag.NewFlagSet(command, flag.ExitOnError)
	bootstrap := flags.String("bootstrap", "127.0.0.1:9092", "bootstrap broker")
	topic := flags.String("topic", "", "topic")
	version := flags.String("version", sarama.MaxVersion.String(), `Kafka version to speak, or "default"`)
	clientID := flags.String("client-id", "odradek-sarama", "client id")
	codec := flags.String("codec", "none", "none, gzip, snappy, lz4 or zstd (produce)")
	idempotent := flags.Bool("idempotent", false, "idempotent producer (produce)")
	partitions := flags.Int("partitions", 1, "partitions 0..N-1 to read (consume)")
	count := flags.Int("count", 0, "records to read (consume)")
	timeout := flags.Duration("timeout", 30*time.Second, "longest wait for the records (consume)")
	offsetTime := flags.Int64("offset-time", -1, "then ask each partition's offset for this timestamp (ms), oldest and newest (consume)")
	groupID := flags.String("group", "", "consumer group (group)")
	strategy := flags.String("strategy", "range", "range, roundrobin or sticky (group)")
	transactionalID := flags.String("transactional-id", "", "transactional id (txn)")
	transactionTimeout := flags.Duration("transaction-timeout", time.Minute, "transaction.timeout.ms (txn)")
	topics := flags.String("topics", "", "T:N,U:M: topics and their partition counts (read)")
	isolation := flags.String("isolation", "committed", "committed or uncommitted (read)")
	until := flags.String("until", "", "read each partition until a record with this value (read)")
	if err := flags.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	if *topic == "" && command != "txn" && command != "read" {
		fmt.Fprintln(os.Stderr, "sarama: -topic is required")
		os.Exit(2)
	}
	sarama.Logger = stdlog.New(os.Stderr, "[sarama] ", stdlog.LstdFlags|stdlog.Lmicroseconds) // the test keeps stderr as the log
	config := newConfig(*version, *clientID)
	brokers := []string{*bootstrap}
	switch command {
	case "produce":
		produce(brokers, *topic, *codec, *idempotent, config)
	case "consume":
		consume(brokers, *topic, *partitions, *count, *timeout, *offsetTime, config)
	case "group":
		group(brokers, *topic, *groupID, *strategy, config)
	case "admin":
		admin(brokers, *topic, config)
	case "txn":
		transactionalProducer(brokers, *transactionalID, *transactionTimeout, config)
	case "read":
		read(brokers, *topics, *isolation, *until, *timeout, config)
	default:
		fmt.Fprintf(os.Stderr, "sarama: unknown command %q\n", command)
		os.Exit(2)
	}
}
