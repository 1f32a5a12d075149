// Command franzgo is a franz-go consumer for odradek's client tests.
//
// With -group it is a group member: by default with the classic protocol and the range balancer
// only (the one protocol every client library offers); -balancer cooperative-sticky picks the
// cooperative protocol, -balancer consumer the KIP-848 consumer protocol (the broker assigns,
// with its range assignor). It consumes -topic from the earliest offset when nothing is
// committed, and commits what it consumed after every poll (auto-commit off, so the test knows
// when offsets are committed). Without -group it consumes partitions 0 to -partitions - 1 of
// -topic directly from the start, and takes commands on standard input, one a line:
//
//	remove <partition>   stop consuming it (RemoveConsumePartitions)
//	add <partition>      consume it again from the start (AddConsumePartitions)
//
// It writes one line per event on standard output:
//
//	assigned <partition>,<partition>,...   the member's whole assignment after a rebalance
//	record <partition> <offset> <value>
//	committed
//	done <command>                         a command was applied
//
// and franz-go's own log (info level: session resets, errors) on standard error. It leaves the
// group (LeaveGroup, via Close) when its standard input closes or on SIGTERM, and exits 1 on any
// client error, so that a test sees failures instead of a silent member.
//
// The subcommands txn, transform and read (the transactional producer, kgo.GroupTransactSession
// and a read_committed / read_uncommitted reader) are described in transactions.go; produce (an
// idempotent producer reporting each record's fate, for the fault tests) in produce.go.
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
	"strconv"
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
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "txn", "transform", "read":
			runTransactional(os.Args[1], os.Args[2:])
			return
		case "produce":
			runProduce(os.Args[2:])
			return
		}
	}
	bootstrap := flag.String("bootstrap", "127.0.0.1:9092", "bootstrap broker")
	group := flag.String("group", "", "consumer group id")
	topic := flag.String("topic", "", "topic to consume")
	clientID := flag.String("client-id", "franz-go-member", "client id")
	balancer := flag.String("balancer", "range", "range, cooperative-sticky or consumer (KIP-848)")
	partitions := flag.Int("partitions", 0, "without -group: consume partitions 0 to N-1 directly")
	flag.Parse()
	if *topic == "" || (*group == "") == (*partitions == 0) {
		fmt.Fprintln(os.Stderr, "franzgo: -topic and either -group or -partitions are required")
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

	options := []kgo.Opt{
		kgo.SeedBrokers(*bootstrap),
		kgo.ClientID(*clientID),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)),
	}
	if *group == "" {
		direct := map[int32]kgo.Offset{}
		for partition := 0; partition < *partitions; partition++ {
			direct[int32(partition)] = kgo.NewOffset().AtStart()
		}
		options = append(options, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: direct}))
	} else {
		switch *balancer {
		case "range":
			options = append(options, kgo.Balancers(kgo.RangeBalancer()))
		case "cooperative-sticky":
			options = append(options, kgo.Balancers(kgo.CooperativeStickyBalancer()))
		case "consumer":
			options = append(options, kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer())
		default:
			fmt.Fprintln(os.Stderr, "franzgo: unknown -balancer", *balancer)
			os.Exit(2)
		}
		options = append(options, groupOptions(*group, *topic, &assignedMu, assigned, report)...)
	}
	client, err := kgo.NewClient(options...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "franzgo:", err)
		os.Exit(1)
	}

	ctx, stop := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-signals; stop() }()
	go func() {
		if *group != "" {
			io.Copy(io.Discard, os.Stdin)
			stop()
			return
		}
		lines := bufio.NewScanner(os.Stdin)
		for lines.Scan() {
			if err := command(client, *topic, lines.Text()); err != nil {
				fmt.Fprintln(os.Stderr, "franzgo:", err)
				os.Exit(2)
			}
			out.line("done %s", lines.Text())
		}
		stop()
	}()

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
		if fetches.NumRecords() > 0 && *group != "" {
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

// groupOptions: membership of group, calling report as the assignment changes.
func groupOptions(group, topic string, assignedMu *sync.Mutex, assigned map[int32]bool,
	report func()) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10 * time.Second),
		kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, added map[string][]int32) {
			assignedMu.Lock()
			defer assignedMu.Unlock()
			for _, partition := range added[topic] {
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
			for _, partition := range revoked[topic] {
				delete(assigned, partition)
			}
			report()
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			assignedMu.Lock()
			defer assignedMu.Unlock()
			for _, partition := range lost[topic] {
				delete(assigned, partition)
			}
			report()
		}),
	}
}

// command applies one line of standard input of a direct consumer.
func command(client *kgo.Client, topic, line string) error {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return fmt.Errorf("bad command %q", line)
	}
	partition, err := strconv.Atoi(fields[1])
	if err != nil {
		return fmt.Errorf("bad command %q", line)
	}
	switch fields[0] {
	case "remove":
		client.RemoveConsumePartitions(map[string][]int32{topic: {int32(partition)}})
	case "add":
		client.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {int32(partition): kgo.NewOffset().AtStart()}})
	default:
		return fmt.Errorf("bad command %q", line)
	}
	return nil
}
