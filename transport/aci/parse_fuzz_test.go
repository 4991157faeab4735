package aci

import (
	"bytes"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/messages"
)

// snapshot deep-copies what a Request holds, so that it can be compared
// after the input buffers are overwritten.
type snapshot struct {
	action string
	params []kv
	format Format
}

func snap(r *Request) snapshot {
	s := snapshot{action: strings.Clone(r.Action), format: r.Format}
	for _, p := range r.Params {
		s.params = append(s.params, kv{strings.Clone(p.GetName()), strings.Clone(p.GetValue())})
	}
	return s
}

// errKind is the domain sentinel an error from Parse wraps.
func errKind(err error) error {
	for _, e := range []error{messages.ErrBadRequest, messages.ErrMissingParam, messages.ErrInvalidParam} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}

// FuzzParse checks that Parse never panics, that it copies its input, that
// a query split between the URI and a POST body (two pieces, as a client
// may send them) reads the same as the whole query in the URI, and that a
// successful parse re-encoded as a query string parses to the same request.
func FuzzParse(f *testing.F) {
	f.Add(true, []byte("/action=GetStatus&x=1"), "", []byte(nil), uint16(0))
	f.Add(false, []byte("/?Action=QueueInfo&QueueAction=GetStatus&QueueName=fetch&Token=MTAu%2B%2F%3D&ResponseFormat=simplejson"), "", []byte(nil), uint16(20))
	f.Add(true, []byte("/"), "text/plain; charset=ISO-8859-1", []byte("action=Fetch&FetchAction=Synchronize&TaskSections=A%2CB"), uint16(7))
	f.Add(true, []byte("/a=Fetch"), "", []byte("FetchAction=Collect\r\nIdentifiers=a+b\rx=1\ny"), uint16(3))
	f.Add(true, []byte("/a=Fetch"), "multipart/form-data; boundary=B",
		[]byte("--B\r\nContent-Disposition: form-data; name=\"Config\"; filename=\"c\"\r\n\r\nv\x00\xff\r\n--B--\r\n"), uint16(1))
	f.Add(true, []byte("/"), "multipart/form-data; boundary=B",
		[]byte("--B\r\nContent-Disposition: form-data; name=\"action\"\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\nfetch\xe9\r\n"+
			"--B\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Type: text/plain; charset=latin1\r\n\r\nx\r\n"+
			"--B\r\nContent-Disposition: form-data; name=\"x\"\r\nContent-Type: text/plain; charset=Shift_JIS\r\n\r\n\x93\xfa\r\n--B--\r\n"), uint16(4))
	f.Add(false, []byte("/action=x&%zz=1&a=b%"), "", []byte(nil), uint16(2))
	f.Fuzz(func(t *testing.T, post bool, uri []byte, contentType string, body []byte, split uint16) {
		method := []byte("GET")
		if post {
			method = []byte("POST")
		}
		ct := []byte(contentType)
		req, err := Parse(method, uri, ct, body)
		require.NotNil(t, req)
		before := snap(req)
		for _, b := range [][]byte{uri, ct, body} {
			for i := range b {
				b[i] ^= 0x55
			}
		}
		require.Equal(t, before, snap(req), "Request shares memory with its input")
		if err != nil {
			require.NotNil(t, errKind(err), "%v", err)
			require.True(t, errKind(err) != err, "error wraps no sentinel: %v", err)
		} else {
			require.NotEmpty(t, req.Action)
			// ASCII letters upper-cased, nothing else changed.
			require.False(t, strings.ContainsFunc(req.Action, func(r rune) bool { return 'a' <= r && r <= 'z' }), req.Action)
			for _, p := range req.Params {
				require.NotEmpty(t, p.GetName())
				require.False(t, isActionName([]byte(p.GetName())))
			}
			// Re-encode and parse again.
			var q strings.Builder
			q.WriteString("/?action=" + url.QueryEscape(req.Action))
			for _, p := range req.Params {
				q.WriteString("&" + url.QueryEscape(p.GetName()) + "=" + url.QueryEscape(p.GetValue()))
			}
			again, err := Parse([]byte("GET"), []byte(q.String()), nil, nil)
			require.NoError(t, err, q.String())
			require.Equal(t, before, snap(again), q.String())
		}

		// Two pieces: restore the URI, take its query, split it at an '&'
		// and send the rest as a form body.
		for i := range uri {
			uri[i] ^= 0x55
		}
		_, query := splitURI(uri)
		if query == nil || bytes.ContainsAny(query, "\r\n") {
			return
		}
		whole, errWhole := Parse([]byte("GET"), append([]byte("/?"), query...), nil, nil)
		k := bytes.IndexByte(query[int(split)%(len(query)+1):], '&')
		if k < 0 {
			return
		}
		k += int(split) % (len(query) + 1)
		head, tail := append([]byte("/?"), query[:k]...), query[k+1:]
		pieces, errPieces := Parse([]byte("POST"), head, []byte("application/x-www-form-urlencoded"), tail)
		require.Equal(t, errKind(errWhole), errKind(errPieces))
		require.Equal(t, snap(whole), snap(pieces))
	})
}
