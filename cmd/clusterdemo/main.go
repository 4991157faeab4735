// Command clusterdemo is `make cluster`: a three-member etcd, PostgreSQL and
// three connector nodes on loopback, with everything in a temporary folder,
// until Ctrl-C stops them all (docs/cluster.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/connectorhq/connector/internal/clustertest"
)

const tasks = `[Actions]
MaximumThreads=2

[FetchTasks]
Number=1
0=MyTask

[MyTask]
Url=http://127.0.0.1:8000/
Depth=2
StayOnSite=true
`

func main() {
	bin := flag.String("binary", "bin/connector", "the connector binary")
	nodes := flag.Int("nodes", 3, "connector nodes")
	verbose := flag.Bool("v", false, "show every process's log")
	flag.Parse()
	o := clustertest.Options{Binary: *bin, Nodes: *nodes, Config: tasks, LeaseTTL: 5 * time.Second}
	if *verbose {
		o.Output = os.Stderr
	}
	fmt.Fprintln(os.Stderr, "clusterdemo: starting etcd (3 members), PostgreSQL and", *nodes, "connector nodes on 127.0.0.1 ...")
	c, err := clustertest.Start(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterdemo:", err)
		os.Exit(1)
	}
	fmt.Printf("\netcd:        %v\nPostgreSQL:  %s\nfolder:      %s\n\n", c.Etcd.Endpoints(), c.StoreURL(), c.Dir)
	for _, n := range c.Nodes {
		fmt.Printf("%s:       %s   (log %s)\n", n.Name, n.URL(), n.Log)
	}
	first, last := c.Nodes[0], c.Nodes[len(c.Nodes)-1]
	fmt.Printf(`
Submit on one node, ask another:
  T=$(curl -s '%s/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask' | sed -n 's:.*<token>\(.*\)</token>.*:\1:p')
  curl "%s/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=$T"
  curl '%s/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus'
Kill a node (kill -9 <pid>) and ask the others: its actions are taken over.
PIDs:`, first.URL(), last.URL(), last.URL())
	for _, n := range c.Nodes {
		fmt.Printf(" %s=%d", n.Name, n.PID())
	}
	fmt.Printf("\n\nCtrl-C stops everything.\n")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	fmt.Fprintln(os.Stderr, "\nclusterdemo: stopping the nodes, PostgreSQL and etcd ...")
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "clusterdemo:", err)
		os.Exit(1)
	}
}
