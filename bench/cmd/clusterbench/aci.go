package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The actions the nodes are given (as bench/cmd/httpbench): Identifiers of
// a task that was never crawled is the cheapest action a node completes;
// Synchronize of SLOWi (a site that never answers) runs until stopped. A
// Synchronize holds its task exclusively in the whole cluster, so the
// actions that must run at the same time use tasks of their own.
//
// Every action records its end in its task's datastore (one row per task
// in the shared store), so actions of one task wait for each other's
// commit there: the throughput rows spread them over emptyTasks tasks
// (-tasks 1 shows the one-task case).
func cheapSubmit(i, tasks int) string {
	return fmt.Sprintf("action=Fetch&FetchAction=Identifiers&ConfigSection=EMPTY%d", i%tasks)
}

// emptyTasks is the number of EMPTYi tasks in the nodes' configuration.
const emptyTasks = 64

// slowTasks is the number of SLOWi tasks in the nodes' configuration.
const slowTasks = 16

// slowSubmit starts a Synchronize of task SLOWi (i modulo slowTasks).
func slowSubmit(i int) string {
	return fmt.Sprintf("action=Fetch&FetchAction=Synchronize&TaskSections=SLOW%d", i%slowTasks)
}

var httpc = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 256, IdleConnTimeout: time.Minute},
}

func get(base, query string) ([]byte, error) {
	resp, err := httpc.Get(base + "/" + query)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("%s: HTTP %d: %.2000s", query, resp.StatusCode, b)
	}
	return b, nil
}

// submit sends one Fetch and returns its token.
func submit(base, query string) (string, error) {
	b, err := get(base, query)
	if err != nil {
		return "", err
	}
	var r struct {
		Response string `xml:"response"`
		Token    string `xml:"responsedata>token"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("Fetch reply: %w", err)
	}
	if r.Response != "SUCCESS" || r.Token == "" {
		return "", fmt.Errorf("Fetch: %.2000s", b)
	}
	return r.Token, nil
}

// status returns the status text (Queued, Processing, Finished, Stopped,
// ...) of the action with token, asked of base.
func status(base, token string) (string, error) {
	b, err := get(base, "action=QueueInfo&QueueName=fetch&QueueAction=GetStatus&Token="+url.QueryEscape(token))
	if err != nil {
		return "", err
	}
	var r struct {
		Response string `xml:"response"`
		Status   string `xml:"responsedata>actions>action>status"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("GetStatus reply: %w", err)
	}
	if r.Response != "SUCCESS" {
		return "", fmt.Errorf("GetStatus: %.2000s", b)
	}
	return r.Status, nil
}

// busyStops counts Stops answered ERRORSERVERBUSY (and asked again, as
// the reply says); busyText is the first such reply's description.
var (
	busyStops int
	busyText  string
)

// stop sends QueueAction=Stop for token to base, again (up to 5 times)
// when the answer is ERRORSERVERBUSY.
func stop(base, token string) error {
	var err error
	for i := 0; i < 5; i++ {
		if err = stopOnce(base, token); err == nil || !strings.Contains(err.Error(), "ERRORSERVERBUSY") {
			return err
		}
		busyStops++
		if busyText == "" {
			s := err.Error()
			if i := strings.Index(s, "<errordescription>"); i >= 0 {
				s = s[i+len("<errordescription>"):]
				s, _, _ = strings.Cut(s, "<")
			}
			busyText = s
		}
	}
	return err
}

func stopOnce(base, token string) error {
	b, err := get(base, "action=QueueInfo&QueueName=fetch&QueueAction=Stop&Token="+url.QueryEscape(token))
	if err != nil {
		return err
	}
	var r struct {
		Response string `xml:"response"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("Stop reply: %w", err)
	}
	if r.Response != "SUCCESS" {
		return fmt.Errorf("Stop: %.2000s", b)
	}
	return nil
}
