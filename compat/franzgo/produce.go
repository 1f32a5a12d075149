package main

// The produce subcommand: an idempotent franz-go producer for the fault tests
// (tests/compat_clients/test_fault_clients.py).
//
//	franzgo produce -bootstrap HOST:PORT -topic T -count N [-request-timeout 5s] [-delivery-timeout 30s]
//	                [-request-timeout-overhead 10s] [-metadata-min-age 5s]
//
// It sends N records with the values value-0 .. value-N-1 to partition 0 of T (acks=all and
// idempotence, franz-go's defaults), waits for every one, and prints what the client reported
// for each, one line each on stdout, then DONE:
//
//	ACK <index> <partition> <offset>
//	ERROR <index> <Kafka error code or -> <message>
//
// It exits 0 whatever the records' fate.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func runProduce(args []string) {
	flags := flag.NewFlagSet("produce", flag.ExitOnError)
	bootstrap := flags.String("bootstrap", "127.0.0.1:9092", "bootstrap broker")
	topic := flags.String("topic", "", "topic to produce to")
	count := flags.Int("count", 10, "records to send")
	requestTimeout := flags.Duration("request-timeout", 0, "ProduceRequestTimeout (0: franz-go's default)")
	deliveryTimeout := flags.Duration("delivery-timeout", 30*time.Second, "RecordDeliveryTimeout")
	timeoutOverhead := flags.Duration("request-timeout-overhead", 0,
		"RequestTimeoutOverhead: how much longer than the request's own timeout to wait for a response (0: franz-go's default, 10s)")
	metadataMinAge := flags.Duration("metadata-min-age", 0, "MetadataMinAge (0: franz-go's default, 5s)")
	flags.Parse(args)
	options := []kgo.Opt{
		kgo.SeedBrokers(*bootstrap),
		kgo.DefaultProduceTopic(*topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(*deliveryTimeout),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)),
	}
	if *metadataMinAge > 0 {
		// How soon franz-go may re-read metadata after NOT_LEADER_OR_FOLLOWER or a dropped
		// connection: each such error waits for a refresh at most this old.
		options = append(options, kgo.MetadataMinAge(*metadataMinAge))
	}
	if *timeoutOverhead > 0 {
		options = append(options, kgo.RequestTimeoutOverhead(*timeoutOverhead))
	}
	if *requestTimeout > 0 {
		options = append(options, kgo.ProduceRequestTimeout(*requestTimeout))
	}
	client, err := kgo.NewClient(options...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "franzgo produce:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	say := func(format string, values ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", values...)
	}
	var wait sync.WaitGroup
	for i := 0; i < *count; i++ {
		index := i
		wait.Add(1)
		record := &kgo.Record{Partition: 0, Value: []byte(fmt.Sprintf("value-%d", i))}
		client.Produce(context.Background(), record, func(r *kgo.Record, err error) {
			defer wait.Done()
			if err == nil {
				say("ACK %d %d %d", index, r.Partition, r.Offset)
				return
			}
			code := "-"
			var kafkaError *kerr.Error
			if errors.As(err, &kafkaError) {
				code = fmt.Sprint(kafkaError.Code)
			}
			say("ERROR %d %s %s", index, code, strings.ReplaceAll(err.Error(), "\n", " "))
		})
	}
	wait.Wait()
	client.Close()
	say("DONE")
}
