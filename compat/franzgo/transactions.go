package main

// The transactional subcommands (tests/compat_clients/test_transactions_franzgo_sarama_kafkajs.py). Each writes
// one JSON object a line on standard output and franz-go's log on standard error:
//
//	franzgo txn -bootstrap B -transactional-id ID [-transaction-timeout D]
//	    a transactional producer (kgo.TransactionalID, manual partitioner) driven by commands on
//	    standard input, one a line: "init" (InitProducerId, through ProducerID), "begin",
//	    "send TOPIC PARTITION VALUE" (acknowledged before the answer), "commit", "abort". Each is
//	    answered {"event":"done","op":...} (send adds "offset") or
//	    {"event":"failed","op":...,"error":text,"code":kafka_error_code|null}; a failure does not
//	    end the program, so the test sees what the next operation answers. It exits when
//	    standard input closes.
//	franzgo transform -bootstrap B -transactional-id ID -group G -input T -output U [-transaction-timeout D]
//	    consume-transform-produce through kgo.GroupTransactSession (read_committed): each command
//	    "round commit|abort COUNT [pause]" begins a transaction, polls until COUNT records of T
//	    arrived, produces each value to U (same partition, value prefixed "out-") and ends the
//	    transaction with a commit or an abort. Answers {"event":"polled","values":[...]} then
//	    {"event":"ended","committed":bool,"error":text|null,"code":...}. With "pause" it stops as
//	    soon as the TxnOffsetCommit answer is read (the offsets are in the transaction, EndTxn is
//	    not sent yet), writes {"event":"offsets sent"} and waits for the command "continue".
//	franzgo read -bootstrap B -topics T:N,U:M -isolation committed|uncommitted -until VALUE
//	    reads partitions 0..N-1 of T (and of U...) from the start with that isolation level until
//	    each partition delivered a record whose value is VALUE; one
//	    {"event":"record","topic":t,"partition":p,"offset":o,"value":v} line per record.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	operationTimeout   = 30 * time.Second
	txnOffsetCommitKey = 28
)

var (
	jsonMu  sync.Mutex
	jsonOut = json.NewEncoder(os.Stdout)
)

func emit(fields map[string]any) {
	jsonMu.Lock()
	defer jsonMu.Unlock()
	if err := jsonOut.Encode(fields); err != nil {
		panic(err)
	}
}

// withError adds the error's text and, if it carries one, the Kafka error code.
func withError(fields map[string]any, err error) map[string]any {
	fields["error"], fields["code"] = nil, nil
	if err != nil {
		fields["error"] = err.Error()
		var kafkaError *kerr.Error
		if errors.As(err, &kafkaError) {
			fields["code"] = kafkaError.Code
		}
	}
	return fields
}

func fatal(step string, err error) {
	emit(withError(map[string]any{"event": "error", "step": step}, err))
	os.Exit(1)
}

func transactionalOptions(bootstrap, transactionalID string, timeout time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.TransactionalID(transactionalID),
		kgo.TransactionTimeout(timeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)),
	}
}

// stdinLines sends each line of standard input to commands, except "continue", which goes to
// resume; both close when standard input does.
func stdinLines(commands, resume chan<- string) {
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		if lines.Text() == "continue" {
			resume <- lines.Text()
		} else {
			commands <- lines.Text()
		}
	}
	close(commands)
	close(resume)
}

func runTransactional(command string, args []string) {
	flags := flag.NewFlagSet(command, flag.ExitOnError)
	bootstrap := flags.String("bootstrap", "127.0.0.1:9092", "bootstrap broker")
	transactionalID := flags.String("transactional-id", "", "transactional id (txn, transform)")
	timeout := flags.Duration("transaction-timeout", time.Minute, "transaction.timeout.ms (txn, transform)")
	group := flags.String("group", "", "consumer group (transform)")
	input := flags.String("input", "", "topic to consume (transform)")
	output := flags.String("output", "", "topic to produce to (transform)")
	topics := flags.String("topics", "", "T:N,U:M: topics and their partition counts (read)")
	isolation := flags.String("isolation", "committed", "committed or uncommitted (read)")
	until := flags.String("until", "", "read each partition until a record with this value (read)")
	if err := flags.Parse(args); err != nil {
		os.Exit(2)
	}
	switch command {
	case "txn":
		transactionalProducer(*bootstrap, *transactionalID, *timeout)
	case "transform":
		transform(*bootstrap, *transactionalID, *timeout, *group, *input, *output)
	case "read":
		read(*bootstrap, *topics, *isolation, *until)
	}
}

func transactionalProducer(bootstrap, transactionalID string, timeout time.Duration) {
	client, err := kgo.NewClient(transactionalOptions(bootstrap, transactionalID, timeout)...)
	if err != nil {
		fatal("connect", err)
	}
	defer client.Close()
	commands, resume := make(chan string), make(chan string, 1)
	go stdinLines(commands, resume)
	for line := range commands {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		answer := map[string]any{"event": "done", "op": fields[0]}
		ctx, cancel := context.WithTimeout(context.Background(), operationTimeout)
		switch {
		case fields[0] == "init":
			_, _, err = client.ProducerID(ctx)
		case fields[0] == "begin":
			err = client.BeginTransaction()
		case fields[0] == "send" && len(fields) == 4:
			partition, parseErr := strconv.Atoi(fields[2])
			if parseErr != nil {
				fatal("input", parseErr)
			}
			record := &kgo.Record{Topic: fields[1], Partition: int32(partition), Value: []byte(fields[3])}
			err = client.ProduceSync(ctx, record).FirstErr()
			if err == nil {
				answer["offset"] = record.Offset
			}
		case fields[0] == "commit":
			err = client.EndTransaction(ctx, kgo.TryCommit)
		case fields[0] == "abort":
			// Records still buffered are dropped first, as franz-go asks before an abort.
			if err = client.AbortBufferedRecords(ctx); err == nil {
				err = client.EndTransaction(ctx, kgo.TryAbort)
			}
		default:
			fatal("input", fmt.Errorf("bad command %q", line))
		}
		cancel()
		if err != nil {
			answer["event"] = "failed"
			withError(answer, err)
		}
		emit(answer)
	}
}

// pauseAfterOffsets implements kgo.HookBrokerRead: once armed, it holds the connection's reader
// right after a TxnOffsetCommit answer arrived, before franz-go sees it (so before EndTxn).
type pauseAfterOffsets struct {
	mu     sync.Mutex
	armed  bool
	resume <-chan string
}

func (p *pauseAfterOffsets) arm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = true
}

func (p *pauseAfterOffsets) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != txnOffsetCommitKey || err != nil {
		return
	}
	p.mu.Lock()
	armed := p.armed
	p.armed = false
	p.mu.Unlock()
	if armed {
		emit(map[string]any{"event": "offsets sent"})
		<-p.resume
	}
}

func transform(bootstrap, transactionalID string, timeout time.Duration, group, input, output string) {
	commands, resume := make(chan string), make(chan string, 1)
	pause := &pauseAfterOffsets{resume: resume}
	options := append(transactionalOptions(bootstrap, transactionalID, timeout),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.WithHooks(pause),
	)
	session, err := kgo.NewGroupTransactSession(options...)
	if err != nil {
		fatal("connect", err)
	}
	defer session.Close()
	go stdinLines(commands, resume)
	for line := range commands {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if fields[0] != "round" || len(fields) < 3 || (fields[1] != "commit" && fields[1] != "abort") {
			fatal("input", fmt.Errorf("bad command %q", line))
		}
		count, err := strconv.Atoi(fields[2])
		if err != nil {
			fatal("input", err)
		}
		if len(fields) == 4 && fields[3] == "pause" {
			pause.arm()
		}
		if err := session.Begin(); err != nil {
			fatal("begin", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), operationTimeout)
		values := []string{}
		for len(values) < count {
			fetches := session.PollFetches(ctx)
			if ctx.Err() != nil {
				fatal("poll", fmt.Errorf("%d of %d records within %s", len(values), count, operationTimeout))
			}
			fetches.EachError(func(topic string, partition int32, err error) {
				fatal(fmt.Sprintf("poll %s[%d]", topic, partition), err)
			})
			fetches.EachRecord(func(record *kgo.Record) {
				values = append(values, string(record.Value))
				out := &kgo.Record{Topic: output, Partition: record.Partition,
					Value: append([]byte("out-"), record.Value...)}
				if err := session.ProduceSync(ctx, out).FirstErr(); err != nil {
					fatal("produce", err)
				}
			})
		}
		emit(map[string]any{"event": "polled", "values": values})
		committed, err := session.End(ctx, kgo.TransactionEndTry(fields[1] == "commit"))
		cancel()
		emit(withError(map[string]any{"event": "ended", "committed": committed}, err))
	}
}

func read(bootstrap, topics, isolation, until string) {
	level := kgo.ReadCommitted()
	if isolation == "uncommitted" {
		level = kgo.ReadUncommitted()
	} else if isolation != "committed" {
		fatal("input", fmt.Errorf("bad -isolation %q", isolation))
	}
	partitions := map[string]map[int32]kgo.Offset{}
	waiting := map[string]bool{}
	for _, item := range strings.Split(topics, ",") {
		name, count, found := strings.Cut(item, ":")
		n, err := strconv.Atoi(count)
		if !found || err != nil {
			fatal("input", fmt.Errorf("bad -topics %q", topics))
		}
		partitions[name] = map[int32]kgo.Offset{}
		for partition := 0; partition < n; partition++ {
			partitions[name][int32(partition)] = kgo.NewOffset().AtStart()
			waiting[fmt.Sprintf("%s/%d", name, partition)] = true
		}
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumePartitions(partitions),
		kgo.FetchIsolationLevel(level), kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)))
	if err != nil {
		fatal("connect", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), operationTimeout)
	defer cancel()
	for len(waiting) > 0 {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			fatal("read", fmt.Errorf("no %q yet on %v within %s", until, waiting, operationTimeout))
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			fatal(fmt.Sprintf("read %s[%d]", topic, partition), err)
		})
		fetches.EachRecord(func(record *kgo.Record) {
			emit(map[string]any{"event": "record", "topic": record.Topic, "partition": record.Partition,
				"offset": record.Offset, "value": string(record.Value)})
			if string(record.Value) == until {
				delete(waiting, fmt.Sprintf("%s/%d", record.Topic, record.Partition))
			}
		})
	}
}
