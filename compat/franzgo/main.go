// Command franzgo is a franz-go consumer group member for odradek's mixed-client tests.
//
// It joins -group with the classic protocol and the range balancer only (the one protocol
// every client library offers), consumes -topic from the earliest offset when nothing is
// committed, and commits what it consumed after every poll (auto-commit off, so the test
// knows when offsets are committed). It writes one line per event on standard output:
//
//	assigned <partition>,<partition>,...   the member's whole assignment after a rebalance
//	record <partition> <offset> <value>
//	committed
//
// It leaves the group (LeaveGroup, via Close) when its standard input closes or on SIGTERM,
// and exits 1 on any client error, so that a test sees failures instead of a silent member.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type output struct {
	mu     sync.Mutex
	writer *bufio.Writer
}

func (o *output) line(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.writer, format+"\n", args...)
	o.writer.Flush()
}

func main() {
	bootstrap := flag.String("bootstrap", "127.0.0.1:9092", "bootstrap broker")
	group := flag.String("group", "", "consumer group id")
	topic := flag.String("topic", "", "topic to consume")
	clientID := flag.String("client-id", "franz-go-member", "client id")
	flag.Parse()
	if *group == "" || *topic == "" {
		fmt.Fprintln(os.Stderr, "franzgo: -group and -topic are required")
		os.Exit(2)
	}

	out := &output{writer: bufio.NewWriter(os.Stdout)}
	var assignedMu sync.Mutex
	assigned := map[int32]bool{}
	report := func() {
		partitions := make([]int, 0, len(assigned))
		for partition := range assigned {
			partitions = append(partitions, int(partition))
		}
		sort.Ints(partitions)
		names := make([]string, len(partitions))
		for i, partition := range partitions {
			names[i] = fmt.Sprint(partition)
		}
		out.line("assigned %s", strings.Join(names, ","))
	}

	client, err := kgo.NewClient(
		kgo.SeedBrokers(*bootstrap),
		kgo.ClientID(*clientID),
		kgo.ConsumerGroup(*group),
		kgo.ConsumeTopics(*topic),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, added map[string][]int32) {
			assignedMu.Lock()
			defer assignedMu.Unlock()
			for _, partition := range added[*topic] {
				assigned[partition] = true
			}
			report()
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			// Eager range rebalances revoke everything: commit first, as franz-go asks of
			// clients that commit themselves.
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "franzgo: commit on revoke:", err)
			}
			assignedMu.Lock()
			defer assignedMu.Unlock()
			for _, partition := range revoked[*topic] {
				delete(assigned, partition)
			}
			report()
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			assignedMu.Lock()
			defer assignedMu.Unlock()
			for _, partition := range lost[*topic] {
				delete(assigned, partition)
			}
			report()
		}),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "franzgo:", err)
		os.Exit(1)
	}

	ctx, stop := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-signals; stop() }()
	go func() { io.Copy(io.Discard, os.Stdin); stop() }()

	failed := false
	for ctx.Err() == nil {
		fetches := client.PollFetches(ctx)
		fetches.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "franzgo: fetch %s[%d]: %v\n", t, p, err)
				failed = true
			}
		})
		if failed {
			break
		}
		fetches.EachRecord(func(record *kgo.Record) {
			out.line("record %d %d %s", record.Partition, record.Offset, record.Value)
		})
		if fetches.NumRecords() > 0 {
			if err := client.CommitUncommittedOffsets(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, "franzgo: commit:", err)
				failed = true
				break
			}
			out.line("committed")
		}
	}
	client.Close() // leaves the group
	if failed {
		os.Exit(1)
	}
}
