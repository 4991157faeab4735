// Command clusterdemo is `make cluster`: a three-member etcd, PostgreSQL and
// three connector nodes on loopback, with everything in a temporary folder,
// until Ctrl-C stops them all (docs/cluster.md).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/connectorhq/connector/internal/clustertest"
)

// tasks is the nodes' configuration: MyTask crawls the demo's own site.
const tasks = `[Actions]
MaximumThreads=2

[FetchTasks]
Number=1
0=MyTask

[MyTask]
Url=%s/p/0
Depth=-1
StayOnSite=true
`

// pageDelay is how long the demo site takes to serve a page: with the
// site's chain of 101 pages, a Synchronize lasts at least half a minute
// (at 20 ms it lasted under 3 s, over before a node could be killed).
const pageDelay = 300 * time.Millisecond

// site serves siteHandler on loopback and returns its address.
func site() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, siteHandler(pageDelay))
	return "http://" + ln.Addr().String(), nil
}

// siteHandler serves 200 small linked pages (/p/0 to /p/199, each taking
// delay), so that a Synchronize of MyTask runs long enough to watch, and to
// kill its node in the middle.
func siteHandler(delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/p/"))
		if err != nil || n < 0 || n >= 200 {
			http.NotFound(w, r)
			return
		}
		time.Sleep(delay)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<html><head><title>page %d</title></head><body><p>Page %d of the demo site.</p>", n, n)
		for _, k := range []int{n + 1, n + 2} {
			if k < 200 {
				fmt.Fprintf(w, `<a href="/p/%d">page %d</a> `, k, k)
			}
		}
		fmt.Fprint(w, "</body></html>")
	})
}

func main() {
	bin := flag.String("binary", "bin/connector", "the connector binary")
	nodes := flag.Int("nodes", 3, "connector nodes")
	verbose := flag.Bool("v", false, "show every process's log")
	flag.Parse()
	url, err := site()
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterdemo: the demo site:", err)
		os.Exit(1)
	}
	o := clustertest.Options{Binary: *bin, Nodes: *nodes, Config: fmt.Sprintf(tasks, url), LeaseTTL: 5 * time.Second}
	if *verbose {
		o.Output = os.Stderr
	}
	fmt.Fprintln(os.Stderr, "clusterdemo: starting etcd (3 members), PostgreSQL and", *nodes, "connector nodes on 127.0.0.1 ...")
	c, err := clustertest.Start(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterdemo:", err)
		os.Exit(1)
	}
	fmt.Printf("\netcd:        %v\nPostgreSQL:  %s\nfolder:      %s\nsite:        %s/p/0\n\n", c.Etcd.Endpoints(), c.StoreURL(), c.Dir, url)
	for _, n := range c.Nodes {
		fmt.Printf("%s:       %s   (log %s)\n", n.Name, n.URL(), n.Log)
	}
	first, last := c.Nodes[0], c.Nodes[len(c.Nodes)-1]
	fmt.Printf(`
Submit on one node, ask another:
  T=$(curl -s '%s/action=Fetch&FetchAction=Synchronize&ConfigSection=MyTask' | sed -n 's:.*<token>\(.*\)</token>.*:\1:p')
  curl "%s/action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token=$T"
  curl '%s/action=QueueInfo&QueueName=fetch&QueueAction=QueueStatus'
The Synchronize runs for at least half a minute, on %s (the node that queued it claims it):
kill that node meanwhile (kill -9 %d) and ask the others: its actions are taken over.
PIDs:`, first.URL(), last.URL(), last.URL(), first.Name, first.PID())
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
