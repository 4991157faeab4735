// Package mailbox is the one interface the Google Mail connector's
// transports implement (IMAP in package imapbox, the Gmail API in package
// gmailapi), so that synchronization, documents and state are written once.
//
// A mailbox is made of collections: an IMAP folder, or (Gmail API) the
// mailbox as a whole. A collection's messages have keys that stay the same
// for as long as the message does (IMAP: "<UIDVALIDITY>.<UID>", so that a
// new UIDVALIDITY gives every message a new key; Gmail: the message id),
// and a version: what the message's document depends on besides its bytes,
// which never change (its flags, its labels). The connector keeps, per
// collection, the key and version of every message it delivered, and the
// transport's cursor (IMAP: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and the
// message count; Gmail: the history id). Plan compares the collection with
// them as cheaply as the protocol allows and says which messages to fetch
// and which are gone; Fetch streams the messages to fetch.
package mailbox

import (
	"context"
	"errors"
	"time"
)

// Collection is an IMAP folder, or the whole mailbox of the Gmail API.
type Collection struct {
	// Name is the folder's name (UTF-8, "/" or the server's separator
	// between levels), or "" for the Gmail API's mailbox.
	Name string
	// Attributes are its IMAP attributes (\All, \Sent, ...), if any.
	Attributes []string
}

// Known is what the connector recorded about one collection.
type Known interface {
	// Cursor is what the transport returned in the last Plan whose
	// collection was then read to the end; nil when there is none.
	Cursor() []byte
	// Version returns the recorded version of a message.
	Version(key string) (version string, ok bool)
	// Keys calls fn with every recorded key, in no order.
	Keys(fn func(key string))
	// Len is the number of recorded messages.
	Len() int
}

// Unread is what a Known also says when the connector remembers messages
// of the collection it could not read (Message.Err), of which it keeps no
// record. A transport that reads such messages names those gone from the
// collection (deleted, or no longer indexed) in Plan.Delete, as it names
// known messages, so that they are forgotten; the others it plans as new
// messages, as before.
type Unread interface {
	// Unread reports whether the message could not be read.
	Unread(key string) bool
	// UnreadKeys calls fn with every such key, in no order.
	UnreadKeys(fn func(key string))
}

// Plan is what a Synchronize does with one collection.
type Plan struct {
	// Fetch are the messages to fetch and deliver: new ones, and known
	// ones whose version changed.
	Fetch []string
	// Delete are known messages that are gone from the collection (and,
	// when Known is Unread, the unread ones gone).
	Delete []string
	// Replaced are known messages that are still in the collection under
	// new keys, all in Fetch (IMAP: the folder's new UIDVALIDITY gave
	// every message a new key, and a new reference). Their documents go
	// only once the collection was read to the end (when Cursor is
	// recorded), so that the index is never without the collection's
	// messages while it is read again (a search finds both meanwhile).
	Replaced []string
	// Unchanged counts the known messages left as they are.
	Unchanged int
	// Cursor is recorded once every message of Fetch, Delete and
	// Replaced has been handled.
	Cursor []byte
}

// Meta is what a transport says about a message besides its bytes.
type Meta struct {
	Key      string
	Version  string
	Flags    []string // IMAP flags (\Seen, \Flagged, $Label1, ...)
	Labels   []string // Gmail labels (names)
	Size     int64    // of the whole message, in bytes (RFC822.SIZE)
	Received time.Time
	// GmailID and GmailThreadID are Gmail's message and thread ids (the
	// Gmail API's, or X-GM-MSGID and X-GM-THRID in hexadecimal, which are
	// the same ids), "" elsewhere.
	GmailID, GmailThreadID string
	// UID and UIDValidity locate an IMAP message; 0 otherwise.
	UID, UIDValidity uint32
}

// Message is a fetched message.
type Message struct {
	Meta
	// Reference is the message's unique reference: the same wherever the
	// message is read from (Gmail's id where there is one, else the IMAP
	// URL of RFC 5092).
	Reference string
	// Raw is the message, at most the size limit the transport was given.
	Raw []byte
	// Truncated is set when the message is larger than the limit: Raw is
	// its beginning.
	Truncated bool
	// Err, when set, is why the message could not be read, for a reason
	// of its own (the server refused to read that message alone): the
	// message has its Key and nothing else, and the other messages are
	// read on. It is ErrTransient when the server failed for now.
	Err error
}

// Stats count the work a transport did, for tests and benchmarks.
type Stats struct {
	Commands      int64 // IMAP commands sent, or API requests made
	BodiesFetched int64 // messages whose content was transferred
	BytesFetched  int64 // bytes of message content transferred
}

// Mailbox is one account on one server, connected.
type Mailbox interface {
	// Collections lists the collections to index, after the include and
	// exclude rules the transport was given. When folders the rules name
	// do not exist, it returns the others with an ErrMissingFolder.
	Collections(ctx context.Context) ([]Collection, error)
	// Plan compares a collection with what is known about it.
	Plan(ctx context.Context, c Collection, known Known) (*Plan, error)
	// Fetch fetches messages of a collection (in the order given, or in
	// batches of it) and calls fn with each, on the caller's goroutine. A
	// key that is gone meanwhile is skipped. A message the server refuses
	// to read alone is given to fn with Err set; any other error (of the
	// connection, the account, the context) stops Fetch and is returned,
	// and so is an error from fn.
	Fetch(ctx context.Context, c Collection, keys []string, fn func(*Message) error) error
	// Get fetches one message (View, Collect); ErrNotFound when it is gone.
	Get(ctx context.Context, c Collection, key string) (*Message, error)
	// Delete deletes messages (IMAP: flag \Deleted and expunge them;
	// Gmail API: move them to the trash, or delete them for good, as the
	// transport was configured). Keys that name no message any more (a
	// new UIDVALIDITY) are left, and named by a *NotDeleted error.
	Delete(ctx context.Context, c Collection, keys []string) error
	// Append adds a message to a folder (IMAP APPEND) or to the mailbox
	// with a label (Gmail API insert) and returns its collection and key.
	Append(ctx context.Context, folder string, raw []byte, flags []string, received time.Time) (Collection, string, error)
	// Stats returns the counts so far.
	Stats() Stats
	// Close logs out. Calling it twice is harmless.
	Close() error
}

// ErrNotFound: the message or folder does not exist (any more).
var ErrNotFound = errors.New("mailbox: not found")

// NotDeleted is Delete's error when some keys name no message of the
// collection any more (IMAP: the folder's UIDVALIDITY changed, and the
// message has a new key): those were not deleted; the others were.
type NotDeleted struct {
	Keys []string
	Err  error
}

func (e *NotDeleted) Error() string { return e.Err.Error() }
func (e *NotDeleted) Unwrap() error { return e.Err }

// ErrMissingFolder is what Collections' error is (errors.Is) when folders
// (labels) the settings name do not exist: the collections it returns
// with it are the others, which are synchronized; the task then ends with
// the error, so that the settings are corrected.
var ErrMissingFolder = errors.New("its messages are no longer indexed; the other folders are")

// FailedAt is Fetch's error when the server failed (dropped the
// connection, answered NO) while it was giving messages: Key is the first
// message of its command it did not give, in the order servers give them
// (ascending UIDs), which may be one it can never give.
type FailedAt struct {
	Key string
	Err error
}

func (e *FailedAt) Error() string { return e.Err.Error() }
func (e *FailedAt) Unwrap() error { return e.Err }

// ErrTransient is what a Message.Err is (errors.Is) when the server failed
// for now (an HTTP 5xx of the Gmail API) rather than refused the message:
// reading it again later may work.
var ErrTransient = errors.New("mailbox: the server failed for now")

// ErrAuth wraps an authentication failure (a refused password, a token
// the server or the token endpoint refused): retrying does not help.
var ErrAuth = errors.New("mailbox: authentication failed")
