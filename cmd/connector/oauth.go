package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/connectorhq/connector/config"
	"github.com/connectorhq/connector/connectors"
	"github.com/connectorhq/connector/connectors/mailfetch"
	"github.com/connectorhq/connector/connectors/webexfetch"
	"github.com/connectorhq/connector/oauth"
	"github.com/connectorhq/connector/secret"
)

// oauthTask is a task that reads its source with OAuth 2.0: its client and
// the file its refresh token is kept in.
type oauthTask interface {
	OAuthClient() (oauth.Config, string)
}

// oauthTypes are the connector types whose tasks `connector oauth`
// authorizes, with the function that resolves such a task.
var oauthTypes = map[string]func(cfg *config.Config, task string) (oauthTask, error){
	mailfetch.Type: func(cfg *config.Config, task string) (oauthTask, error) {
		return mailfetch.TaskSettings(cfg, task)
	},
	webexfetch.Type: func(cfg *config.Config, task string) (oauthTask, error) {
		return webexfetch.TaskSettings(cfg, task)
	},
}

func oauthTypeNames() string {
	names := slices.Sorted(maps.Keys(oauthTypes))
	return strings.Join(names, ", ")
}

// oauthMain is `connector oauth`: the one-time authorization of a task
// that reads its source as a user with OAuth 2.0, a mailbox or Webex
// spaces (IDOL ships an OAuth configuration tool for this). It reads the task's OAuthClientID,
// OAuthClientSecret, OAuthAuthorizeUrl, OAuthTokenUrl, OAuthScopes and
// OAuthRedirectUrl from the configuration, prints the consent URL for a
// person to open, waits for the browser to come back to the loopback
// redirect, and writes the refresh token, encrypted with [Security]
// AESKeyFile (created when missing), to the task's OAuthTokenFile (mode
// 0600). No token is ever printed.
//
// The configuration's [Connector] Type must be one whose tasks use OAuth
// (oauthTypes: GOOGLEMAIL, WEBEX).
func oauthMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connector oauth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file of a connector whose tasks use OAuth ([Connector] Type="+strings.ReplaceAll(oauthTypeNames(), ", ", " or ")+"; required)")
	task := fs.String("task", "", "task section to authorize (default: the first task of [FetchTasks])")
	wait := fs.Duration("timeout", 10*time.Minute, "how long to wait for the browser to come back")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: connector oauth -config FILE [-task TASK]\n\n"+
			"Authorizes a task once with OAuth 2.0 (authorization code on a loopback redirect) and\n"+
			"stores its refresh token, encrypted, in the task's OAuthTokenFile.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case flagAfterArgs(fs.Args()) != "":
		fmt.Fprintln(stderr, flagAfterArgsError("connector oauth", flagAfterArgs(fs.Args())))
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "connector oauth: unexpected argument %q (name the task with -task)\n", fs.Arg(0))
	case *cfgPath == "":
		fmt.Fprintln(stderr, "connector oauth: -config is required: the configuration of the task to authorize")
	}
	if fs.NArg() > 0 || *cfgPath == "" {
		fs.Usage()
		return 2
	}
	if *wait <= 0 {
		fmt.Fprintf(stderr, "connector oauth: -timeout %v: must be positive (how long to wait for the browser)\n", *wait)
		return 2
	}
	cfg, desc, err := connectors.Builtin.Read(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "connector oauth: %v\n", err)
		return 1
	}
	resolve := oauthTypes[desc.Type]
	if resolve == nil {
		fmt.Fprintf(stderr, "connector oauth: %s: [Connector] Type=%s has no task to authorize with OAuth (these types have: %s)\n", *cfgPath, desc.Type, oauthTypeNames())
		return 1
	}
	name := *task
	if name == "" {
		if len(cfg.FetchTasks) == 0 {
			fmt.Fprintln(stderr, "connector oauth: [FetchTasks] lists no task: name one with -task")
			return 2
		}
		name = cfg.FetchTasks[0]
	}
	s, err := resolve(cfg, name)
	if err != nil {
		fmt.Fprintf(stderr, "connector oauth: %v\n", err)
		return 1
	}
	oc, tokenFile := s.OAuthClient()
	if oc.ClientID == "" {
		fmt.Fprintf(stderr, "connector oauth: task %s has no OAuthClientID (a service account key needs no authorization)\n", name)
		return 1
	}
	key, err := secret.EnsureKeyFile(cfg.Security.AESKeyFile)
	if err != nil {
		fmt.Fprintf(stderr, "connector oauth: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	tok, err := oauth.Authorize(ctx, oc, func(u string) {
		fmt.Fprintf(stdout, "Open this address in a browser, sign in as the account of task %s and allow access:\n\n  %s\n\nWaiting for the browser to come back...\n", name, u)
	})
	if err != nil {
		fmt.Fprintf(stderr, "connector oauth: %v\n", err)
		return 1
	}
	if err := (oauth.TokenFile{Path: tokenFile, Key: key}).Save(tok, oc.ClientID, oc.Scopes); err != nil {
		fmt.Fprintf(stderr, "connector oauth: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Authorized. The refresh token of task %s is in %s (encrypted with %s).\n", name, tokenFile, cfg.Security.AESKeyFile)
	return 0
}
