package aci

//go:generate go test -run TestErrorsDoc -update

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/secret"
)

// errorDef is one row of the wire error table.
type errorDef struct {
	err    error  // domain sentinel, matched with errors.Is
	num    int    // stable number: errorid suffix and rawerrorid
	code   string // errorcode
	str    string // errorstring
	hint   string // appended to errordescription, may be empty
	reason string // when it is used (documentation only)
}

// errorTable maps every domain error to its ACI error. It is the only place
// that knows wire codes. Order matters: the first row whose sentinel
// matches wins, so specific rows come before ErrInternal, and the last row
// (ErrInternal) also serves errors that match no row. Numbers are stable:
// never renumber a row, only add new ones.
//
// errorcode is IDOL's own wherever IDOL has one for the case
// (aci-protocol.md: ERRORNOTIMPLEMENTED for an action it does not answer,
// ERRORPARAMINVALID for a parameter value it cannot use, which includes a
// QueueName, a Token or an Identifier that names nothing). Rows that share
// a code are told apart by the number (errorid, rawerrorid), as IDOL's own
// errors are. The other codes are this server's, for cases IDOL has no
// documented code for.
var errorTable = [...]errorDef{
	{messages.ErrUnknownAction, 101, "ERRORNOTIMPLEMENTED", "The requested action was not recognised",
		"", "the action names no action of this server"},
	{messages.ErrBadRequest, 102, "ERRORBADREQUEST", "The request could not be read",
		"", "undecodable request: bad percent escape, broken multipart body, malformed HTTP"},
	{messages.ErrMissingParam, 103, "ERRORMISSINGPARAM", "A required parameter is missing",
		"", "a required parameter is absent or empty"},
	{messages.ErrInvalidParam, 104, "ERRORPARAMINVALID", "A parameter has an invalid value",
		"", "a parameter (or configuration override) value is not acceptable"},
	{messages.ErrTooLarge, 105, "ERRORREQUESTTOOLARGE", "The request exceeds a configured limit",
		"", "the body, the request line and headers (16 KiB), the parameter count or a parameter's XML is larger than the server allows; the description names the limit"},
	{messages.ErrUnknownQueue, 110, "ERRORPARAMINVALID", "The queue does not exist",
		"", "QueueName names no queue of this server"},
	{messages.ErrUnknownToken, 111, "ERRORPARAMINVALID", "The token is not recognised",
		"", "the token is garbled, was never issued here, or its action was removed by retention"},
	{messages.ErrQueueFull, 112, "ERRORQUEUEFULL", "The queue is full",
		"retry later", "the queue holds MaximumQueueSize actions"},
	{messages.ErrActionRunning, 113, "ERRORACTIONRUNNING", "The action is running",
		"Cancel removes only queued actions; use QueueAction=Stop to stop a running action",
		"QueueAction=Cancel for an action that has started"},
	{messages.ErrActionEnded, 114, "ERRORACTIONENDED", "The action has ended",
		"", "a queue control (Cancel, Stop, Pause, ...) for an action that has ended"},
	{messages.ErrNotQueued, 115, "ERRORACTIONNOTQUEUED", "The action is not queued",
		"only queued actions can change priority", "QueueAction=ChangePriority for an action that is no longer queued"},
	{messages.ErrNotPaused, 116, "ERRORACTIONNOTPAUSED", "The action is not paused",
		"", "QueueAction=Resume for an action that is not paused"},
	{messages.ErrNotFound, 120, "ERRORPARAMINVALID", "The requested item was not found",
		"", "a synchronous action (View, ...) was asked for an item that does not exist"},
	{messages.ErrPermissionDenied, 140, "ERRORPERMISSIONDENIED", "The client is not allowed to perform this action",
		"", "no authorization role of the client ([AuthorizationRoles]) allows the action; ShowPermissions says what the client may do"},
	{messages.ErrRefusedOrigin, 141, "ERRORREQUESTREFUSED", "The request was refused",
		"", "a browser sent it from another site (Sec-Fetch-Site cross-site or same-site), or its Host header is not in [Server] AllowedHosts"},
	{messages.ErrClientLimit, 142, "ERRORCLIENTLIMIT", "The client has reached a limit of the server",
		"retry once its other connections have closed or their replies have been read", "the client (its IPv4 address, or its IPv6 /64) has as many connections open as the port gives one client ([Server] or [Service] MaxConnectionsPerClient), or a large reply would take the replies it has waiting to be sent past [Server] MaxReplyBytesPerClient"},
	{messages.ErrShuttingDown, 130, "ERRORSHUTTINGDOWN", "The server is shutting down",
		"", "the server is stopping and accepts no new work"},
	{messages.ErrTimeout, 131, "ERRORSERVERBUSY", "The server is busy",
		"retry later", "an internal component did not answer in time (overload)"},
	{messages.ErrStore, 132, "ERRORSTOREFAILED", "The action store failed",
		"", "the durable store could not record a change; the description says what became of it (a submission refused this way is not queued; a change to an action or to the queue is in effect, with the action's status, and is written again; unless the store failed on an I/O error: the description then says the submission may be found queued after a restart and that changes are not written again, see operations.md)"},
	{messages.ErrInternal, 199, "ERRORINTERNAL", "Internal error",
		"", "a bug or unexpected condition; also any error that is not a domain error"},
}

// errorIDPrefix starts every errorid (see ErrorFor).
const errorIDPrefix = "CON"

// ErrorFor maps err to the ACI error reply for action at time now.
//
// The first row of the error table (docs/errors.md) whose domain sentinel
// matches err with errors.Is gives errorcode, errorstring and the number;
// an error matching no row is reported as ERRORINTERNAL. errordescription
// says what exactly went wrong (see describe), followed by the row's hint
// when it has one. errorid is "CON" + the letters and digits of action in
// upper case + the decimal number, e.g. CONQUEUEINFO111; rawerrorid is the
// number. errortime is now (printed in now's location). A nil err is
// reported as ERRORINTERNAL too.
func ErrorFor(action string, err error, now time.Time) *Error {
	def := &errorTable[len(errorTable)-1]
	for i := range errorTable {
		if err != nil && errors.Is(err, errorTable[i].err) {
			def = &errorTable[i]
			break
		}
	}
	desc := describe(err, def)
	if def.hint != "" && !strings.Contains(desc, def.hint) {
		desc += " (" + def.hint + ")"
	}
	return &Error{
		ID:          errorID(action, def.num),
		Raw:         def.num,
		Code:        def.code,
		String:      def.str,
		Description: desc,
		Time:        now,
	}
}

// describe is the errordescription of err, matched by row def: err's text
// (for a *messages.ParamError, the parameter, its value and what is wrong)
// without the words of the row's sentinel ("queue: unknown token"), which
// errorstring already says in plain words; when nothing else is left, the
// row's account of when the error happens. It never repeats the hint:
// ErrorFor adds that. The password of any URL it quotes is redacted
// (secret.RedactURLs): an error may quote a value as the client sent it
// (there is no queue "http://u:pw@h/"), and the reply is written and
// logged.
func describe(err error, def *errorDef) string {
	if err == nil {
		return "unknown error"
	}
	desc := secret.RedactURLs(err.Error())
	if def.err != nil {
		s := def.err.Error()
		switch {
		case desc == s:
			desc = ""
		case strings.HasPrefix(desc, s+": "):
			desc = desc[len(s)+2:]
		case strings.HasSuffix(desc, ": "+s):
			desc = desc[:len(desc)-len(s)-2]
		default:
			if i := strings.Index(desc, ": "+s+": "); i >= 0 {
				desc = desc[:i] + ": " + desc[i+len(s)+4:]
			}
		}
	}
	if desc = strings.TrimSpace(desc); desc == "" {
		desc = def.reason
	}
	return desc
}

func errorID(action string, num int) string {
	b := make([]byte, 0, len(errorIDPrefix)+len(action)+4)
	b = append(b, errorIDPrefix...)
	for i := 0; i < len(action); i++ {
		c := action[i]
		switch {
		case 'a' <= c && c <= 'z':
			b = append(b, c-'a'+'A')
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			b = append(b, c)
		}
	}
	return string(strconv.AppendInt(b, int64(num), 10))
}

// errorsMarkdown renders the error table as docs/errors.md.
func errorsMarkdown() []byte {
	var b bytes.Buffer
	b.WriteString("# ACI error codes\n\n")
	b.WriteString("<!-- Generated from transport/aci/errors.go by `go generate ./transport/aci`; do not edit. -->\n\n")
	b.WriteString("Every ACI error reply carries one of these codes. The HTTP status is 200; clients detect errors by\n")
	b.WriteString("`<response>ERROR</response>`. `errorid` is `CON` + the action in upper case + the number\n")
	b.WriteString("(e.g. `CONQUEUEINFO111`), `rawerrorid` is the number in hexadecimal, `errordescription` says what\n")
	b.WriteString("exactly went wrong (for parameters: which one, its value and why), followed by the hint when there is\n")
	b.WriteString("one; it never repeats the hint or `errorstring`. A value, name or line longer than 100 bytes is quoted\n")
	b.WriteString("by its first 100 bytes and its size: `\"AAA…\"… (1048576 bytes)`, a URL's password hidden before the cut.\n\n")
	b.WriteString("`errorcode` is IDOL's own wherever IDOL has a code for the case: `ERRORNOTIMPLEMENTED` for an action the\n")
	b.WriteString("server does not answer, and `ERRORPARAMINVALID` for a parameter value it cannot use, including a\n")
	b.WriteString("`QueueName`, a `Token` or an `Identifier` that names nothing. Rows that share a code are told apart by\n")
	b.WriteString("their number (`errorid`, `rawerrorid`), as IDOL's own errors are (many of them are `ERRORPARAMINVALID`).\n")
	b.WriteString("The other codes are this server's own, for cases IDOL has no documented code for. Numbers are stable.\n")
	b.WriteString("A failure that is none of these is reported as `ERRORINTERNAL`.\n\n")
	b.WriteString("| number | rawerrorid | errorcode | errorstring | when | hint | Go sentinel |\n")
	b.WriteString("|---:|---|---|---|---|---|---|\n")
	for _, d := range errorTable {
		fmt.Fprintf(&b, "| %d | %s | `%s` | %s | %s | %s | `%s` |\n",
			d.num, rawErrorID(d.num), d.code, d.str, d.reason, d.hint, sentinelName(d.err))
	}
	return b.Bytes()
}

// sentinelName names a sentinel of package messages for the docs.
func sentinelName(err error) string {
	for name, e := range map[string]error{
		"ErrUnknownToken": messages.ErrUnknownToken, "ErrUnknownQueue": messages.ErrUnknownQueue,
		"ErrQueueFull": messages.ErrQueueFull, "ErrActionRunning": messages.ErrActionRunning,
		"ErrActionEnded": messages.ErrActionEnded, "ErrNotQueued": messages.ErrNotQueued,
		"ErrNotPaused": messages.ErrNotPaused, "ErrShuttingDown": messages.ErrShuttingDown,
		"ErrStore": messages.ErrStore, "ErrTimeout": messages.ErrTimeout,
		"ErrInternal": messages.ErrInternal, "ErrUnknownAction": messages.ErrUnknownAction,
		"ErrInvalidParam": messages.ErrInvalidParam, "ErrMissingParam": messages.ErrMissingParam,
		"ErrBadRequest": messages.ErrBadRequest, "ErrNotFound": messages.ErrNotFound,
		"ErrTooLarge": messages.ErrTooLarge,
	} {
		if e == err {
			return "messages." + name
		}
	}
	return err.Error()
}
