package imapbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/net/html/charset"

	"github.com/connectorhq/connector/connectors/mailfetch/mailbox"
	"github.com/connectorhq/connector/internal/panics"
)

var wordDecoder = &mime.WordDecoder{CharsetReader: func(label string, r io.Reader) (io.Reader, error) {
	return charset.NewReaderLabel(label, r)
}}

// cursor is a folder's recorded state.
type cursor struct {
	UIDValidity   uint32 `json:"v"`
	UIDNext       uint32 `json:"n"`
	HighestModSeq uint64 `json:"m,omitempty"`
	Messages      uint32 `json:"c"`
}

func (c cursor) encode() []byte { b, _ := json.Marshal(c); return b }

func decodeCursor(b []byte) (cursor, bool) {
	var c cursor
	if len(b) == 0 || json.Unmarshal(b, &c) != nil {
		return cursor{}, false
	}
	return c, true
}

// Key returns a message's key: "<UIDVALIDITY>.<UID>".
func Key(uidValidity uint32, uid imap.UID) string {
	var buf [24]byte // one allocation (the string), not three
	return string(appendKey(buf[:0], uidValidity, uid))
}

// appendKey appends Key(uidValidity, uid) to b.
func appendKey(b []byte, uidValidity uint32, uid imap.UID) []byte {
	b = strconv.AppendUint(b, uint64(uidValidity), 10)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(uid), 10)
}

// ParseKey reads a key.
func ParseKey(key string) (uidValidity uint32, uid imap.UID, ok bool) {
	v, u, found := strings.Cut(key, ".")
	if !found {
		return 0, 0, false
	}
	vv, err1 := strconv.ParseUint(v, 10, 32)
	uu, err2 := strconv.ParseUint(u, 10, 32)
	if err1 != nil || err2 != nil || uu == 0 {
		return 0, 0, false
	}
	return uint32(vv), imap.UID(uu), true
}

// Collections implements mailbox.Mailbox.
func (b *Box) Collections(ctx context.Context) ([]mailbox.Collection, error) {
	opts := &imap.ListOptions{}
	if b.caps.Has(imap.CapListStatus) {
		so := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true}
		if b.caps.Has(imap.CapCondStore) {
			so.HighestModSeq = true
		}
		opts.ReturnStatus = so
	}
	if b.caps.Has(imap.CapSpecialUse) {
		opts.ReturnSpecialUse = true
	}
	// The STATUS of the folder this session has selected is the session's
	// view, which may be behind (Dovecot): leave it first.
	stale := ""
	if b.selName != "" {
		if b.caps.Has(imap.CapUnselect) {
			if err := b.run(ctx, func() error { b.stats.commands.Add(1); return b.c.Unselect().Wait() }); err != nil {
				return nil, fmt.Errorf("imap: unselect: %w", err)
			}
		} else {
			stale = b.selName
		}
		b.selected, b.selName = nil, ""
	}
	var list []*imap.ListData
	err := b.run(ctx, func() (err error) {
		b.stats.commands.Add(1)
		list, err = b.c.List("", "*", opts).Collect()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("imap: list folders: %w", err)
	}
	b.status = map[string]*imap.StatusData{}
	var all []mailbox.Collection
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		if l.Status != nil && l.Mailbox != stale {
			b.status[l.Mailbox] = l.Status
		}
		c := mailbox.Collection{Name: l.Mailbox}
		for _, a := range l.Attrs {
			c.Attributes = append(c.Attributes, string(a))
		}
		all = append(all, c)
	}
	return b.choose(all)
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

// junkNames are folder names that mean spam or trash on servers that do
// not mark them with SPECIAL-USE attributes; at the top level, or under
// INBOX where a server keeps every folder there (Courier-IMAP's and older
// Cyrus's "INBOX." namespace: INBOX.Trash).
var junkNames = []string{"spam", "junk", "junk e-mail", "junk email", "trash", "deleted items", "deleted messages", "bin",
	"[gmail]/spam", "[gmail]/trash", "[gmail]/bin", "[google mail]/spam", "[google mail]/trash", "[google mail]/bin"}

// IsJunk reports whether a folder is a spam or trash folder.
func IsJunk(c mailbox.Collection) bool {
	for _, a := range c.Attributes {
		if strings.EqualFold(a, string(imap.MailboxAttrJunk)) || strings.EqualFold(a, string(imap.MailboxAttrTrash)) {
			return true
		}
	}
	name := strings.ToLower(c.Name)
	if len(name) > len("inbox.") && strings.HasPrefix(name, "inbox") && (name[5] == '.' || name[5] == '/') {
		name = name[len("inbox."):]
	}
	return slices.Contains(junkNames, name)
}

// choose applies the folder settings. The folders of Folders that do not
// exist are left out, and said by its error (mailbox.ErrMissingFolder).
func (b *Box) choose(all []mailbox.Collection) ([]mailbox.Collection, error) {
	var out []mailbox.Collection
	var missing []error
	if len(b.cfg.Folders) > 0 {
		for _, want := range b.cfg.Folders {
			i := slices.IndexFunc(all, func(c mailbox.Collection) bool {
				return c.Name == want || strings.EqualFold(want, "INBOX") && strings.EqualFold(c.Name, "INBOX")
			})
			if i < 0 {
				// Deleted (a Gmail label its owner deleted), or never
				// there: the others are still indexed.
				missing = append(missing, fmt.Errorf("imap: folder %q does not exist on %s (Folders): %w", want, b.cfg.Addr, mailbox.ErrMissingFolder))
				continue
			}
			if slices.ContainsFunc(out, func(c mailbox.Collection) bool { return c.Name == all[i].Name }) {
				continue // named twice ("INBOX,inbox"): synchronized once
			}
			out = append(out, all[i])
		}
	} else {
		if b.gmail {
			// Gmail: [Gmail]/All Mail holds every message once; labels
			// (folders included) are metadata.
			for _, c := range all {
				if slices.ContainsFunc(c.Attributes, func(a string) bool { return strings.EqualFold(a, string(imap.MailboxAttrAll)) }) {
					out = append(out, c)
				}
			}
		}
		if out == nil {
			for _, c := range all {
				if b.cfg.IncludeSpamTrash || !IsJunk(c) {
					out = append(out, c)
				}
			}
		}
	}
	var kept []mailbox.Collection
	for _, c := range out {
		if b.cfg.FolderMustHave != nil && !b.cfg.FolderMustHave.MatchString(c.Name) {
			continue
		}
		if b.cfg.FolderCantHave != nil && b.cfg.FolderCantHave.MatchString(c.Name) {
			continue
		}
		kept = append(kept, c)
	}
	return kept, errors.Join(missing...)
}

// selectFolder selects c (read-write: Delete needs it) unless it is the
// folder selected.
func (b *Box) selectFolder(ctx context.Context, name string) (*imap.SelectData, error) {
	if b.selected != nil && b.selName == name {
		return b.selected, nil
	}
	var data *imap.SelectData
	err := b.run(ctx, func() (err error) {
		b.stats.commands.Add(1)
		data, err = b.c.Select(name, &imap.SelectOptions{CondStore: b.caps.Has(imap.CapCondStore)}).Wait()
		return err
	})
	if err != nil {
		b.selected, b.selName = nil, ""
		if isNoSuchFolder(err) {
			return nil, fmt.Errorf("imap: select %q: %w", name, mailbox.ErrNotFound)
		}
		return nil, fmt.Errorf("imap: select %q: %w", name, err)
	}
	b.selected, b.selName = data, name
	return data, nil
}

func isNoSuchFolder(err error) bool {
	var ie *imap.Error
	if e, ok := err.(*imap.Error); ok {
		ie = e
	}
	return ie != nil && (ie.Code == imap.ResponseCodeNonExistent || ie.Type == imap.StatusResponseTypeNo)
}

// Plan implements mailbox.Mailbox.
func (b *Box) Plan(ctx context.Context, c mailbox.Collection, known mailbox.Known) (*mailbox.Plan, error) {
	prev, hasPrev := decodeCursor(known.Cursor())
	condstore := b.caps.Has(imap.CapCondStore)
	if st := b.status[c.Name]; st != nil && st.NumMessages != nil && hasPrev && condstore {
		now := cursor{UIDValidity: st.UIDValidity, UIDNext: uint32(st.UIDNext), HighestModSeq: st.HighestModSeq, Messages: *st.NumMessages}
		if now == prev && int(now.Messages) == known.Len() && now.HighestModSeq != 0 {
			return &mailbox.Plan{Unchanged: known.Len(), Cursor: now.encode()}, nil
		}
	}
	// Select anew: the folder may have changed since it was last selected.
	b.selected, b.selName = nil, ""
	sel, err := b.selectFolder(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	now := cursor{UIDValidity: sel.UIDValidity, UIDNext: uint32(sel.UIDNext), HighestModSeq: sel.HighestModSeq, Messages: sel.NumMessages}
	plan := &mailbox.Plan{Cursor: now.encode()}
	var all []imap.UID // the folder's UIDs, ascending, each once
	if sel.NumMessages > 0 {
		var data *imap.SearchData
		err := b.run(ctx, func() (err error) {
			b.stats.commands.Add(1)
			var opts *imap.SearchOptions
			if b.caps.Has(imap.CapESearch) {
				opts = &imap.SearchOptions{ReturnAll: true}
			}
			data, err = b.c.UIDSearch(&imap.SearchCriteria{}, opts).Wait()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("imap: list the messages of %q: %w", c.Name, err)
		}
		if err := checkUIDCount(data, sel.NumMessages); err != nil {
			return nil, fmt.Errorf("imap: list the messages of %q: %w", c.Name, err)
		}
		all = data.AllUIDs()
		slices.Sort(all)
		all = slices.Compact(all)
	}
	// A first run (nothing known) fetches every UID: no lookups.
	first := known.Len() == 0
	var current map[imap.UID]bool
	if !first {
		current = make(map[imap.UID]bool, len(all))
		for _, u := range all {
			current[u] = true
		}
	}
	var kept []imap.UID
	known.Keys(func(key string) {
		v, uid, ok := ParseKey(key)
		if ok && v != sel.UIDValidity {
			plan.Replaced = append(plan.Replaced, key)
			return
		}
		if !ok || !current[uid] {
			plan.Delete = append(plan.Delete, key)
			return
		}
		kept = append(kept, uid)
	})
	slices.Sort(kept)
	slices.Sort(plan.Delete)
	slices.Sort(plan.Replaced)
	if first && len(all) > 0 {
		plan.Fetch = make([]string, 0, len(all))
	}
	for _, uid := range all {
		k := Key(sel.UIDValidity, uid)
		if first {
			plan.Fetch = append(plan.Fetch, k)
		} else if _, ok := known.Version(k); !ok {
			plan.Fetch = append(plan.Fetch, k)
		}
	}
	// Which known messages changed: their flags (and Gmail labels) since
	// the recorded HIGHESTMODSEQ, or all of them without CONDSTORE.
	var since uint64
	if condstore && hasPrev && prev.UIDValidity == sel.UIDValidity && prev.HighestModSeq != 0 && sel.HighestModSeq != 0 {
		since = prev.HighestModSeq
		if sel.HighestModSeq == since {
			plan.Unchanged = len(kept)
			return plan, nil
		}
	}
	changed := map[string]bool{}
	for _, chunk := range chunkUIDs(kept, 5000) {
		metas, err := b.fetchMeta(ctx, sel.UIDValidity, chunk, since)
		if err != nil {
			return nil, err
		}
		for _, m := range metas {
			if v, ok := known.Version(m.Key); ok && v != m.Version {
				changed[m.Key] = true
			}
		}
	}
	for _, uid := range kept {
		k := Key(sel.UIDValidity, uid)
		if changed[k] {
			plan.Fetch = append(plan.Fetch, k)
		} else {
			plan.Unchanged++
		}
	}
	return plan, nil
}

// chunkUIDs cuts uids, in their order, into the UID sets of commands: at
// most n UIDs each, and at most maxSetBytes as sent (consecutive UIDs
// written as a range, as imap.UIDSet writes them: its set is never
// longer than the one counted here).
func chunkUIDs(uids []imap.UID, n int) [][]imap.UID {
	var out [][]imap.UID
	for len(uids) > 0 {
		k := 0
		size := 0
		for k < len(uids) && k < n {
			size += setGrowth(uids[:k], uids[k])
			if k > 0 && size > maxSetBytes {
				break
			}
			k++
		}
		out = append(out, uids[:k])
		uids = uids[k:]
	}
	return out
}

// setGrowth is how many bytes uid adds to the UID set of prev as sent:
// the end of a range when it follows the last UID, else a comma and uid.
func setGrowth(prev []imap.UID, uid imap.UID) int {
	if len(prev) == 0 {
		return digits(uid)
	}
	last := prev[len(prev)-1]
	if uid == last+1 {
		if len(prev) >= 2 && prev[len(prev)-2]+1 == last {
			return digits(uid) - digits(last) // "a:last" becomes "a:uid"
		}
		return 1 + digits(uid) // "last" becomes "last:uid"
	}
	return 1 + digits(uid)
}

func digits(uid imap.UID) int {
	n := 1
	for uid >= 10 {
		uid /= 10
		n++
	}
	return n
}

// fetchMeta fetches the flags, size and date of messages of the selected
// folder (changed since modseq, when not 0), with their Gmail data.
func (b *Box) fetchMeta(ctx context.Context, uidValidity uint32, uids []imap.UID, since uint64) ([]*mailbox.Meta, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	set := imap.UIDSetNum(uids...)
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true, ChangedSince: since}
	var msgs []*mailbox.Meta
	err := b.run(ctx, func() error {
		b.stats.commands.Add(1)
		cmd := b.c.Fetch(set, opts)
		for {
			m := cmd.Next()
			if m == nil {
				break
			}
			buf, err := m.Collect()
			if err != nil {
				b.abandon()
				return err
			}
			if buf.UID == 0 {
				continue
			}
			msgs = append(msgs, &mailbox.Meta{
				Key: Key(uidValidity, buf.UID), UID: uint32(buf.UID), UIDValidity: uidValidity,
				Flags: flagStrings(buf.Flags), Size: buf.RFC822Size, Received: buf.InternalDate,
			})
		}
		return cmd.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("imap: fetch flags in %q: %w", b.selName, err)
	}
	if b.gmail && len(msgs) > 0 {
		if err := b.gmailData(ctx, msgs); err != nil {
			return nil, err
		}
	}
	for _, m := range msgs {
		m.Version = version(m.Flags, m.Labels)
	}
	return msgs, nil
}

// version is what a message's document depends on besides its bytes.
func version(flags, labels []string) string {
	if labels == nil && slices.IsSorted(flags) {
		return strings.Join(flags, " ") // no copy to sort (one flag: no allocation)
	}
	f := slices.Clone(flags)
	slices.Sort(f)
	v := strings.Join(f, " ")
	if labels != nil {
		l := slices.Clone(labels)
		slices.Sort(l)
		v += "|" + strings.Join(l, "\x1f")
	}
	return v
}

// flagsSeen is the flags of the message read before, as strings, and
// their version: the next message, which most often has the same flags,
// shares them (nothing changes a message's Flags once read).
type flagsSeen struct {
	imapFlags []imap.Flag
	flags     []string
	v         string
}

// of returns flagStrings(flags) and their version(…, nil): the same as the
// last call's when flags are the same.
func (s *flagsSeen) of(flags []imap.Flag) ([]string, string) {
	if s.flags == nil || !slices.Equal(flags, s.imapFlags) {
		s.imapFlags, s.flags = flags, flagStrings(flags)
		s.v = version(s.flags, nil)
	}
	return s.flags, s.v
}

func flagStrings(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue // session state, not the message's
		}
		out = append(out, string(f))
	}
	return out
}

// Fetch implements mailbox.Mailbox.
func (b *Box) Fetch(ctx context.Context, c mailbox.Collection, keys []string, fn func(*mailbox.Message) error) error {
	if len(keys) == 0 {
		return nil
	}
	sel, err := b.selectFolder(ctx, c.Name)
	if err != nil {
		return err
	}
	var uids []imap.UID
	for _, k := range keys {
		if v, uid, ok := ParseKey(k); ok && v == sel.UIDValidity {
			uids = append(uids, uid)
		}
	}
	// The server sends the next group while the caller works on this one:
	// one goroutine fetches, the caller's handles (at most two groups of
	// bodies are held at once). The fetching goroutine is outside the
	// worker's recovery: a panic there (in the reading of the server's
	// answers) is the fetch's error, not the process's end.
	groups := make(chan []*mailbox.Message)
	stop := make(chan struct{})
	fetchErr := make(chan error, 1)
	go func() {
		defer close(groups)
		var err error
		defer func() { fetchErr <- err }()
		defer panics.Catch(b.log, "imap: fetching messages", &err)
		send := func(msgs []*mailbox.Message) bool {
			select {
			case groups <- msgs:
				return true
			case <-stop:
				return false
			}
		}
		if b.gmail {
			// Gmail's labels come from a second connection, per batch of
			// metadata: flags and sizes first, then the bodies.
			err = b.fetchGroups(ctx, sel.UIDValidity, uids, send)
			return
		}
		err = b.fetchStreamed(ctx, sel.UIDValidity, uids, send)
	}()
	for msgs := range groups {
		for _, m := range msgs {
			if err = fn(m); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	close(stop)
	for range groups { // let the fetching goroutine end
	}
	if ferr := <-fetchErr; err == nil {
		err = ferr
	}
	return err
}

// fetchGroups fetches messages of the selected folder, per batch of
// FetchBatch: flags and sizes first, then the bodies in groups of at most
// fetchGroupMessages messages and fetchGroupBytes (each message counted at
// most MaxMessageBytes), one command per group, in the order asked,
// handing each group to send; it stops when send returns false.
func (b *Box) fetchGroups(ctx context.Context, uidValidity uint32, uids []imap.UID, send func([]*mailbox.Message) bool) error {
	for _, chunk := range chunkUIDs(uids, b.cfg.FetchBatch) {
		metas, err := b.fetchMeta(ctx, uidValidity, chunk, 0)
		if err != nil {
			return err
		}
		byUID := map[imap.UID]*mailbox.Meta{}
		for _, m := range metas {
			byUID[imap.UID(m.UID)] = m
		}
		var group []imap.UID
		var groupBytes int64
		flush := func() (bool, error) {
			if len(group) == 0 {
				return true, nil
			}
			msgs, err := b.fetchBodies(ctx, group, byUID)
			group, groupBytes = nil, 0
			if err != nil {
				return false, err
			}
			return send(msgs), nil
		}
		for _, uid := range chunk {
			m := byUID[uid]
			if m == nil {
				continue // expunged meanwhile
			}
			size := min(m.Size, b.cfg.MaxMessageBytes)
			if len(group) > 0 && (groupBytes+size > fetchGroupBytes || len(group) >= fetchGroupMessages) {
				if ok, err := flush(); !ok || err != nil {
					return err
				}
			}
			group = append(group, uid)
			groupBytes += size
		}
		if ok, err := flush(); !ok || err != nil {
			return err
		}
	}
	return nil
}

// fetchStreamed fetches messages of the selected folder, per batch of
// FetchBatch, with their flags, size and date in the same UID FETCH as
// their bodies (cut at MaxMessageBytes): one command, one round trip per
// batch. It hands the messages to send in groups of at most
// fetchGroupMessages messages and fetchGroupBytes (plus one message) as
// they arrive, and at each batch's end, in the order the server sends
// them; it stops when send returns false. While a group waits to be
// taken, the server goes on sending the batch until the connection's
// buffers are full.
//
// A batch's last group is handed over only once the next batch's command
// was sent, so that the server reads and sends those messages while the
// caller waits for the group to be taken (its builders busy with the
// group before): were the command sent after the hand-over, the server
// would wait, idle, for each batch's last group to be taken. At most two
// groups are still held at once (the one taken, the one waiting), and one
// command is outstanding at a time.
//
// The next batch's command is not sent before this one ended: servers
// may answer pipelined FETCH commands interleaved (Dovecot does), and
// go-imap hands a body to its command's reader only, so reading one
// command while the other's literal waits would deadlock, and reading
// both at once would hold two batches of unknown size.
func (b *Box) fetchStreamed(ctx context.Context, uidValidity uint32, uids []imap.UID, send func([]*mailbox.Message) bool) error {
	limit := b.cfg.MaxMessageBytes
	section := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: limit}}
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{section}}
	var last []*mailbox.Message // the batch before's last group, not handed over yet
	for _, chunk := range chunkUIDs(uids, b.cfg.FetchBatch) {
		ok := true
		got := make(map[imap.UID]bool, len(chunk))
		err := b.run(ctx, func() error {
			b.stats.commands.Add(1)
			cmd := b.c.Fetch(imap.UIDSetNum(chunk...), opts)
			if len(last) > 0 {
				ok, last = send(last), nil
				if !ok {
					return cmd.Close() // read to its end: the connection stays usable
				}
			}
			var err error
			ok, last, err = b.readMessages(cmd, uidValidity, limit, got, send)
			if err != nil {
				b.abandon()
				return err
			}
			return cmd.Close() // read to its end: the connection stays usable
		})
		if err != nil {
			if len(last) > 0 {
				send(last) // read whole before the error: the caller may still record them
			}
			return failedAt(uidValidity, chunk, got, fmt.Errorf("imap: fetch messages in %q: %w", b.selName, err))
		}
		if !ok {
			return nil
		}
	}
	if len(last) > 0 {
		send(last)
	}
	return nil
}

// readMessages reads the messages of a FETCH of flags, size, date and
// body, handing them to send in groups of fetchGroupMessages messages or
// fetchGroupBytes as they arrive; it returns the last group, not handed
// over (the caller hands it over once the next command is sent). false: send refused one (the rest of
// cmd is left unread). An error is of the connection (the caller abandons
// it).
func (b *Box) readMessages(cmd *imapclient.FetchCommand, uidValidity uint32, limit int64, got map[imap.UID]bool, send func([]*mailbox.Message) bool) (bool, []*mailbox.Message, error) {
	var group []*mailbox.Message
	var groupBytes int64
	prefix := b.refPrefix(uidValidity) // not Gmail's: its messages take fetchGroups
	refBuf := make([]byte, 0, len(prefix)+32)
	var last flagsSeen
	for {
		m := cmd.Next()
		if m == nil {
			break
		}
		meta := mailbox.Meta{UIDValidity: uidValidity}
		var body []byte
		var flags []imap.Flag // none when the server sent no FLAGS
		for {
			item := m.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				meta.UID = uint32(it.UID)
			case imapclient.FetchItemDataFlags:
				flags = it.Flags
			case imapclient.FetchItemDataRFC822Size:
				meta.Size = it.Size
			case imapclient.FetchItemDataInternalDate:
				meta.Received = it.Time
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				data, err := readLiteral(it.Literal, limit)
				if err != nil {
					return false, nil, err
				}
				body = data
			}
		}
		if meta.UID == 0 || body == nil {
			continue // a FETCH the server sent of its own (a flag change)
		}
		got[imap.UID(meta.UID)] = true
		meta.Flags, meta.Version = last.of(flags)
		b.stats.bodies.Add(1)
		b.stats.bytes.Add(int64(len(body)))
		// The reference and the key (Key) in one string: one allocation,
		// not four.
		rk := strconv.AppendUint(append(refBuf[:0], prefix...), uint64(meta.UID), 10)
		refLen := len(rk)
		refKey := string(appendKey(rk, uidValidity, imap.UID(meta.UID)))
		meta.Key = refKey[refLen:]
		group = append(group, &mailbox.Message{Meta: meta, Reference: refKey[:refLen], Raw: body, Truncated: meta.Size > int64(len(body))})
		groupBytes += int64(len(body))
		if groupBytes >= fetchGroupBytes || len(group) >= fetchGroupMessages {
			if !send(group) {
				return false, nil, nil
			}
			group, groupBytes = nil, 0
		}
	}
	return true, group, nil
}

// failedAt is err as a mailbox.FailedAt naming the lowest UID of a
// command's uids that the server did not give (got): it gives them in
// ascending order, so that is the message it was giving when it failed.
func failedAt(uidValidity uint32, uids []imap.UID, got map[imap.UID]bool, err error) error {
	var first imap.UID
	for _, u := range uids {
		if !got[u] && (first == 0 || u < first) {
			first = u
		}
	}
	if first == 0 {
		return err
	}
	return &mailbox.FailedAt{Key: Key(uidValidity, first), Err: err}
}

// readLiteral reads a body literal, keeping at most limit bytes and
// draining the rest.
func readLiteral(lit imap.LiteralReader, limit int64) ([]byte, error) {
	// A server could send more than asked: keep the limit, drain the rest.
	data := make([]byte, min(lit.Size(), limit))
	n, err := io.ReadFull(lit, data)
	data = data[:n]
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil // checked against the literal's size below
	}
	var rest int64
	if err == nil && int64(len(data)) == limit {
		// Only a literal cut by the limit has more to read: one that ended
		// is not read again (go-imap's reader goroutine owns the
		// connection once a literal's end was seen).
		rest, err = io.Copy(io.Discard, lit)
	}
	if err == nil && int64(len(data))+rest != lit.Size() {
		// The connection ended inside the literal (go-imap reads that as
		// its end).
		err = io.ErrUnexpectedEOF
	}
	return data, err
}

// fetchBodies fetches the bodies (cut at MaxMessageBytes) of messages of
// the selected folder whose metadata is known, and returns them in the
// order of uids.
func (b *Box) fetchBodies(ctx context.Context, uids []imap.UID, meta map[imap.UID]*mailbox.Meta) ([]*mailbox.Message, error) {
	limit := b.cfg.MaxMessageBytes
	section := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: limit}}
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}
	bodies := map[imap.UID][]byte{}
	err := b.run(ctx, func() error {
		b.stats.commands.Add(1)
		cmd := b.c.Fetch(imap.UIDSetNum(uids...), opts)
		for {
			m := cmd.Next()
			if m == nil {
				break
			}
			var uid imap.UID
			var body []byte
			for {
				item := m.Next()
				if item == nil {
					break
				}
				switch it := item.(type) {
				case imapclient.FetchItemDataUID:
					uid = it.UID
				case imapclient.FetchItemDataBodySection:
					if it.Literal == nil {
						continue
					}
					data, err := readLiteral(it.Literal, limit)
					if err != nil {
						b.abandon()
						return err
					}
					body = data
				}
			}
			if uid != 0 && body != nil {
				bodies[uid] = body
			}
		}
		return cmd.Close()
	})
	if err != nil {
		got := make(map[imap.UID]bool, len(bodies))
		for uid := range bodies {
			got[uid] = true
		}
		var uidValidity uint32 // (b.selected is gone once the connection is abandoned)
		for _, m := range meta {
			uidValidity = m.UIDValidity
			break
		}
		return nil, failedAt(uidValidity, uids, got, fmt.Errorf("imap: fetch messages in %q: %w", b.selName, err))
	}
	var out []*mailbox.Message
	for _, uid := range uids {
		body, ok := bodies[uid]
		m := meta[uid]
		if !ok || m == nil {
			continue
		}
		b.stats.bodies.Add(1)
		b.stats.bytes.Add(int64(len(body)))
		out = append(out, &mailbox.Message{Meta: *m, Reference: b.reference(m), Raw: body, Truncated: m.Size > int64(len(body))})
	}
	return out, nil
}

// reference is a message's reference: Gmail's web address of the message
// when the server is Gmail's (the same as the Gmail API transport gives),
// else the IMAP URL of RFC 5092.
func (b *Box) reference(m *mailbox.Meta) string {
	if m.GmailID != "" {
		return GmailReference(b.cfg.Username, m.GmailID)
	}
	return b.refPrefix(m.UIDValidity) + strconv.FormatUint(uint64(m.UID), 10)
}

// refPrefix is the IMAP URL of the selected folder's messages up to the
// UID: the part of reference that is the same for all of them.
func (b *Box) refPrefix(uidValidity uint32) string {
	user := userEscaper.Replace(url.PathEscape(b.cfg.Username))
	var path []string
	for _, seg := range strings.Split(b.selName, "/") {
		path = append(path, url.PathEscape(seg))
	}
	return fmt.Sprintf("imap://%s@%s/%s;UIDVALIDITY=%d/;UID=", user, net2(b.host, b.port), strings.Join(path, "/"), uidValidity)
}

// userEscaper escapes what url.PathEscape leaves of a user name that
// userinfo cannot hold.
var userEscaper = strings.NewReplacer("@", "%40", ":", "%3A")

// GmailReference is the reference of a Gmail message: its address in
// Gmail's web interface.
func GmailReference(user, id string) string {
	return "https://mail.google.com/mail/u/" + url.PathEscape(user) + "/#all/" + id
}

func net2(host, port string) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + port
}

// Get implements mailbox.Mailbox.
func (b *Box) Get(ctx context.Context, c mailbox.Collection, key string) (*mailbox.Message, error) {
	var got *mailbox.Message
	err := b.Fetch(ctx, c, []string{key}, func(m *mailbox.Message) error { got = m; return nil })
	if err != nil {
		return nil, err
	}
	if got == nil {
		return nil, fmt.Errorf("imap: message %s of %q: %w", key, c.Name, mailbox.ErrNotFound)
	}
	return got, nil
}

// Delete implements mailbox.Mailbox: \Deleted, then UID EXPUNGE of just
// those messages (UIDPLUS). Without UIDPLUS, EXPUNGE removes every
// message flagged \Deleted: the other messages so flagged (marked deleted
// by the mailbox's owner, and still recoverable) have the flag taken off
// for the EXPUNGE and put back after it (RFC 4315's way without UID
// EXPUNGE), so that only the messages named are expunged.
func (b *Box) Delete(ctx context.Context, c mailbox.Collection, keys []string) error {
	sel, err := b.selectFolder(ctx, c.Name)
	if err != nil {
		return err
	}
	var set imap.UIDSet
	var stale []string
	for _, k := range keys {
		if v, uid, ok := ParseKey(k); ok && v == sel.UIDValidity {
			set.AddNum(uid)
		} else {
			stale = append(stale, k)
		}
	}
	var notDeleted error
	if len(stale) > 0 {
		// The message is in the folder under another key (or gone):
		// deleting nothing would be taken for its deletion.
		notDeleted = &mailbox.NotDeleted{Keys: stale, Err: fmt.Errorf("imap: %q has a new UIDVALIDITY (%d) since the message was indexed: nothing deleted (the next Synchronize indexes the message, if it is still there, under its new key, which Delete then takes): %w",
			c.Name, sel.UIDValidity, mailbox.ErrNotFound)}
	}
	if len(set) == 0 {
		return notDeleted
	}
	err = b.run(ctx, func() error {
		b.stats.commands.Add(1)
		if err := b.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return fmt.Errorf("imap: flag \\Deleted in %q: %w", c.Name, err)
		}
		b.stats.commands.Add(1)
		if b.caps.Has(imap.CapUIDPlus) {
			if err := b.c.UIDExpunge(set).Close(); err != nil {
				return fmt.Errorf("imap: expunge in %q: %w", c.Name, err)
			}
			b.selected, b.selName = nil, "" // counts changed
			return nil
		}
		return b.expungeOnly(c.Name, set)
	})
	if err != nil {
		return err
	}
	return notDeleted
}

// expungeOnly expunges the messages of set, flagged \Deleted, from the
// selected folder of a server without UIDPLUS: the folder's other
// messages flagged \Deleted lose the flag for the EXPUNGE and get it
// back after it. Should the connection fail in between, they are left
// without it (undeleted), never expunged.
func (b *Box) expungeOnly(folder string, set imap.UIDSet) error {
	b.stats.commands.Add(1)
	data, err := b.c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("imap: find the messages flagged \\Deleted in %q: %w", folder, err)
	}
	var others imap.UIDSet
	for _, uid := range data.AllUIDs() {
		if !set.Contains(uid) {
			others.AddNum(uid)
		}
	}
	flag := func(op imap.StoreFlagsOp) error {
		b.stats.commands.Add(1)
		return b.c.Store(others, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	}
	if len(others) > 0 {
		if err := flag(imap.StoreFlagsDel); err != nil {
			return fmt.Errorf("imap: keep the other messages flagged \\Deleted in %q: %w", folder, err)
		}
	}
	b.stats.commands.Add(1)
	err = b.c.Expunge().Close()
	b.selected, b.selName = nil, "" // counts changed
	if len(others) > 0 {
		// Put back even when the EXPUNGE failed.
		if ferr := flag(imap.StoreFlagsAdd); ferr != nil && err == nil {
			return fmt.Errorf("imap: put \\Deleted back on the other messages flagged so in %q: %w", folder, ferr)
		}
	}
	if err != nil {
		return fmt.Errorf("imap: expunge in %q: %w", folder, err)
	}
	return nil
}

// Append implements mailbox.Mailbox. Without UIDPLUS the key is "" (the
// next Synchronize finds the message).
func (b *Box) Append(ctx context.Context, folder string, raw []byte, flags []string, received time.Time) (mailbox.Collection, string, error) {
	opts := &imap.AppendOptions{Time: received}
	for _, f := range flags {
		opts.Flags = append(opts.Flags, imap.Flag(f))
	}
	var data *imap.AppendData
	err := b.run(ctx, func() error {
		b.stats.commands.Add(1)
		cmd := b.c.Append(folder, int64(len(raw)), opts)
		if _, err := cmd.Write(raw); err != nil {
			_ = cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		var err error
		data, err = cmd.Wait()
		return err
	})
	if err != nil {
		return mailbox.Collection{}, "", fmt.Errorf("imap: append to %q: %w", folder, err)
	}
	if b.selName == folder {
		b.selected, b.selName = nil, ""
	}
	key := ""
	if data != nil && data.UID != 0 {
		key = Key(data.UIDValidity, data.UID)
	}
	return mailbox.Collection{Name: folder}, key, nil
}

// maxFolderMessages bounds the UIDs one folder's listing may name, and
// arrivalSlack the messages that may arrive between SELECT and UID
// SEARCH: an ESEARCH reply is a few bytes whatever it names ("ALL
// 1:4294967295"), and a folder's UIDs are expanded in memory (4 bytes
// each, and a key to fetch or a map entry), so a server (or whatever
// answers on the configured address) could otherwise make the connector
// allocate gigabytes.
const (
	maxFolderMessages = 20_000_000
	arrivalSlack      = 10_000
)

// checkUIDCount refuses a UID SEARCH reply naming more UIDs than the
// folder has (its EXISTS count plus arrivalSlack, at most
// maxFolderMessages), counting the set's ranges without expanding them.
func checkUIDCount(data *imap.SearchData, exists uint32) error {
	set, ok := data.All.(imap.UIDSet)
	if !ok {
		return nil
	}
	limit := min(uint64(exists)+arrivalSlack, maxFolderMessages)
	var n uint64
	for _, r := range set {
		lo, hi := uint64(r.Start), uint64(r.Stop)
		if lo == 0 || hi == 0 { // "*": open-ended
			hi = math.MaxUint32
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		n += hi - lo + 1
	}
	if n > limit {
		return fmt.Errorf("the server's reply names %d UIDs, more than the folder's %d messages (at most %d accepted, %d in any folder): refused", n, exists, limit, maxFolderMessages)
	}
	return nil
}
