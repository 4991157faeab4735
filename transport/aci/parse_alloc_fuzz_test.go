package aci

import (
	"bytes"
	"runtime"
	"testing"
)

// What ParseLimited may allocate, in bytes: allocPerByte per byte of input,
// plus allocPerParam per parameter it may read (Limits.MaxParams), plus
// allocFixed. The input is made large (inflate) so that the per-byte term
// decides. The costly shapes are many tiny parameters: a form body of
// one-byte parameters (a record each) and a multipart body of tiny parts
// (mime/multipart builds a header map per part, up to 60 times the bytes
// the part takes); without MaxParams they allocated up to 78 bytes per
// input byte (issue 9); with it, a tiny parameter costs a bounded amount
// and only MaxParams of them are read.
const (
	allocPerByte  = 4
	allocPerParam = 4 << 10
	allocFixed    = 256 << 10
	inflateTo     = 256 << 10 // body bytes the fuzzed body is repeated up to
	uriTo         = 16 << 10  // the front end reads at most 16 KiB of request line and headers
	fuzzMax       = 1000      // Limits.MaxParams, as [Server] MaxRequestParameters defaults
)

// inflate repeats b until it is at least n bytes long (or returns it as
// it is when empty).
func inflate(b []byte, n int) []byte {
	if len(b) == 0 || len(b) >= n {
		return b
	}
	return bytes.Repeat(b, (n+len(b)-1)/len(b))
}

// allocated returns the bytes the heap has handed out so far.
func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// FuzzParseAllocation checks that the parser's allocation is proportional
// to its input, whatever its shape: at most allocPerByte bytes per input
// byte, plus a bounded cost per parameter up to the parameter limit the
// server uses, plus allocFixed. The
// fuzzed URI and body are repeated into a request of a few hundred KiB, so
// that a shape that costs more per byte than allowed shows at once.
func FuzzParseAllocation(f *testing.F) {
	f.Add(true, []byte("/action=GetStatus&x=1"), "", []byte("a&"))
	f.Add(true, []byte("/"), "application/x-www-form-urlencoded", []byte("a=b&"))
	f.Add(true, []byte("/a=Fetch"), "multipart/form-data; boundary=B", []byte("\r\n--B\r\n\r\n"))
	f.Add(true, []byte("/a=Fetch"), "multipart/form-data; boundary=B",
		[]byte("--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n"))
	// A text part in a charset whose bytes take three in UTF-8 (€).
	f.Add(true, []byte("/a=Fetch"), "multipart/form-data; boundary=B",
		append([]byte("--B\r\nContent-Disposition: form-data; name=\"x\"\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n"),
			append(bytes.Repeat([]byte{0x80}, 8<<10), "\r\n"...)...))
	f.Add(false, []byte("/action=x&y=%41&"), "", []byte(nil))
	f.Add(true, []byte("/"), "text/plain", []byte("\n"))
	f.Fuzz(func(t *testing.T, post bool, uri []byte, contentType string, body []byte) {
		method := []byte("GET")
		if post {
			method = []byte("POST")
		}
		if len(uri) > uriTo || len(body) > inflateTo || len(contentType) > 1024 {
			return
		}
		uri, body = inflate(uri, uriTo/2), inflate(body, inflateTo)
		if len(uri) > uriTo {
			uri = uri[:uriTo]
		}
		ct := []byte(contentType)
		lim := Limits{MaxParams: fuzzMax, MaxParamsName: "[Server] MaxRequestParameters"}
		ParseLimited(method, uri, ct, body, lim) // warm up lazily built tables
		before := allocated()
		req, _ := ParseLimited(method, uri, ct, body, lim)
		used := allocated() - before
		runtime.KeepAlive(req)
		in := len(uri) + len(body) + len(ct)
		if limit := uint64(allocPerByte*in + allocPerParam*fuzzMax + allocFixed); used > limit {
			t.Fatalf("parsing %d bytes allocated %d bytes (%.1f per byte; at most %d per byte, %d per parameter and %d)",
				in, used, float64(used)/float64(in), allocPerByte, allocPerParam, allocFixed)
		}
	})
}
