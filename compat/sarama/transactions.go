package main

// The transactional subcommands (tests/compat_clients/test_transactions_franzgo_sarama_kafkajs.py):
//
//	sarama txn -bootstrap B -transactional-id ID [-transaction-timeout D] [-version V]
//	    a transactional SyncProducer (Producer.Transaction.ID, manual partitioner) driven by
//	    commands on standard input, one a line: "init" (NewSyncProducer, which sends
//	    InitProducerId), "begin", "send TOPIC PARTITION VALUE", "offsets GROUP TOPIC PARTITION
//	    OFFSET" (AddOffsetsToTxn), "consumed GROUP TOPIC PARTITION OFFSET" (AddMessageToTxn of a
//	    message read at OFFSET: it commits OFFSET+1), "commit", "abort". Each is answered
//	    {"event":"done","op":...} (send adds "offset") or
//	    {"event":"failed","op":...,"error":text,"code":kafka_error_code|null}; a failure does not
//	    end the program, so the test sees what the next operation answers. It exits when
//	    standard input closes.
//	sarama read -bootstrap B -topics T:N,U:M -isolation committed|uncommitted -until VALUE [-version V]
//	    reads partitions 0..N-1 of T (and of U...) from the oldest offset with that isolation
//	    level until each partition delivered a record whose value is VALUE; one
//	    {"event":"record","topic":t,"partition":p,"offset":o,"value":v} line per record.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// withError adds the error's text and, if it carries one, the Kafka error code.
func withError(fields map[string]any, err error) map[string]any {
	fields["error"], fields["code"] = nil, nil
	if err != nil {
		fields["error"] = err.Error()
		var kafkaError sarama.KError
		if errors.As(err, &kafkaError) {
			fields["code"] = int16(kafkaError)
		}
	}
	return fields
}

func atoi(text string) int {
	number, err := strconv.Atoi(text)
	if err != nil {
		fail("input", err)
	}
	return number
}

func transactionalProducer(bootstrap []string, transactionalID string, timeout time.Duration, config *sarama.Config) {
	config.Producer.Idempotent = true
	config.Producer.Transaction.ID = transactionalID
	config.Producer.Transaction.Timeout = timeout
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewManualPartitioner
	config.Net.MaxOpenRequests = 1 // Sarama's requirement for idempotence
	var producer sarama.SyncProducer
	defer func() {
		if producer != nil {
			_ = producer.Close()
		}
	}()
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 0 {
			continue
		}
		answer := map[string]any{"event": "done", "op": fields[0]}
		var err error
		if producer == nil && fields[0] != "init" {
			fail("input", fmt.Errorf("%q before init", lines.Text()))
		}
		switch {
		case fields[0] == "init":
			producer, err = sarama.NewSyncProducer(bootstrap, config)
		case fields[0] == "begin":
			err = producer.BeginTxn()
		case fields[0] == "send" && len(fields) == 4:
			message := &sarama.ProducerMessage{Topic: fields[1], Partition: int32(atoi(fields[2])),
				Value: sarama.StringEncoder(fields[3])}
			_, answer["offset"], err = producer.SendMessage(message)
		case fields[0] == "offsets" && len(fields) == 5:
			err = producer.AddOffsetsToTxn(map[string][]*sarama.PartitionOffsetMetadata{fields[2]: {{
				Partition: int32(atoi(fields[3])), Offset: int64(atoi(fields[4]))}}}, fields[1])
		case fields[0] == "consumed" && len(fields) == 5:
			message := &sarama.ConsumerMessage{Topic: fields[2], Partition: int32(atoi(fields[3])),
				Offset: int64(atoi(fields[4]))}
			err = producer.AddMessageToTxn(message, fields[1], nil)
		case fields[0] == "commit":
			err = producer.CommitTxn()
		case fields[0] == "abort":
			err = producer.AbortTxn()
		default:
			fail("input", fmt.Errorf("bad command %q", lines.Text()))
		}
		if err != nil {
			answer["event"] = "failed"
			withError(answer, err)
		}
		emit(answer)
	}
}

func read(bootstrap []string, topics, isolation, until string, timeout time.Duration, config *sarama.Config) {
	switch isolation {
	case "committed":
		config.Consumer.IsolationLevel = sarama.ReadCommitted
	case "uncommitted":
		config.Consumer.IsolationLevel = sarama.ReadUncommitted
	default:
		fail("input", fmt.Errorf("bad -isolation %q", isolation))
	}
	config.Consumer.Return.Errors = true
	consumer, err := sarama.NewConsumer(bootstrap, config)
	if err != nil {
		fail("connect", err)
	}
	messages := make(chan *sarama.ConsumerMessage)
	errs := make(chan error)
	var readers []sarama.PartitionConsumer
	waiting := map[string]bool{}
	for _, item := range strings.Split(topics, ",") {
		topic, count, found := strings.Cut(item, ":")
		if !found {
			fail("input", fmt.Errorf("bad -topics %q", topics))
		}
		for partition := 0; partition < atoi(count); partition++ {
			reader, err := consumer.ConsumePartition(topic, int32(partition), sarama.OffsetOldest)
			if err != nil {
				fail("consume", err)
			}
			readers = append(readers, reader)
			waiting[fmt.Sprintf("%s/%d", topic, partition)] = true
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
	}
	deadline := time.After(timeout)
	for len(waiting) > 0 {
		select {
		case message := <-messages:
			emit(map[string]any{"event": "record", "topic": message.Topic, "partition": message.Partition,
				"offset": message.Offset, "value": string(message.Value)})
			if string(message.Value) == until {
				delete(waiting, fmt.Sprintf("%s/%d", message.Topic, message.Partition))
			}
		case err := <-errs:
			fail("consume", err)
		case <-deadline:
			fail("consume", fmt.Errorf("no %q yet on %v within %s", until, waiting, timeout))
		}
	}
	for _, reader := range readers {
		reader.AsyncClose()
	}
	if err := consumer.Close(); err != nil {
		fail("close", err)
	}
}
