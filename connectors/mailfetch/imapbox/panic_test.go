package imapbox

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/connectors/mailfetch/mailtest"
	"github.com/connectorhq/connector/internal/panics"
)

// panickyTokens panics once armed.
type panickyTokens struct{ armed atomic.Bool }

func (p *panickyTokens) Token() (*oauth2.Token, error) {
	if p.armed.Load() {
		panic("tokens kaboom")
	}
	return &oauth2.Token{AccessToken: "good-token"}, nil
}

// Fetch fetches on a goroutine of its own, outside the worker's recovery:
// a panic there (in the reading of the server's answers, or here in the
// token source Gmail's data connection logs in with, first dialled there)
// ended the process. Fetch returns an error naming it instead, which ends
// the task (and the action, as Error).
func TestFetchPanicIsItsError(t *testing.T) {
	h := mailtest.StartHoodiecrow(t, mailtest.HoodiecrowOptions{
		User: "alice@example.com", Password: "pw", AccessToken: "good-token",
		AllMail: []mailtest.GmailMessage{{Raw: string(mailtest.Message{From: "a@example.com", Subject: "one", Text: "x"}.Raw()), MsgID: "1278455344230334866"}},
	})
	ctx := context.Background()
	tokens := &panickyTokens{}
	cfg := Config{Addr: h.Addr, Security: SecurityNone, Username: "alice@example.com", Auth: AuthXOAuth2, Tokens: tokens}
	planner, err := Dial(ctx, cfg)
	require.NoError(t, err)
	defer planner.Close()
	col := mailbox.Collection{Name: "[Gmail]/All Mail"}
	plan, err := planner.Plan(ctx, col, &known{versions: map[string]string{}})
	require.NoError(t, err)
	require.Len(t, plan.Fetch, 1)
	b, err := Dial(ctx, cfg)
	require.NoError(t, err)
	defer b.Close()
	require.True(t, b.Gmail())
	tokens.armed.Store(true)
	err = b.Fetch(ctx, col, plan.Fetch, func(*mailbox.Message) error { return nil })
	require.ErrorIs(t, err, panics.ErrPanic)
	require.ErrorContains(t, err, "imap: fetching messages: panic: tokens kaboom")
}
