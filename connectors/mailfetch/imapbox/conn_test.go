package imapbox

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// streamConn is a net.Conn whose reads return as much of data as asked
// (a socket with everything already arrived), counting them.
type streamConn struct {
	net.Conn // nil: only what is below is used
	r        *bytes.Reader
	reads    int
	deadline time.Time
}

func (c *streamConn) Read(p []byte) (int, error)        { c.reads++; return c.r.Read(p) }
func (c *streamConn) SetReadDeadline(t time.Time) error { c.deadline = t; return nil }

// go-imap reads the connection through a bufio.Reader of 4 KiB: through a
// bufferedConn the stream is the same, in a system call per 64 KiB.
func TestBufferedConnReadsTheSameStreamInLargeReads(t *testing.T) {
	data := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(r.IntN(256))
	}
	sc := &streamConn{r: bytes.NewReader(data)}
	c := newBufferedConn(sc)
	br := bufio.NewReader(c) // as imapclient.New does
	var got bytes.Buffer
	for {
		// Bytes, literals and lines of any length, as the decoder reads them.
		n := r.IntN(9000)
		if n == 0 {
			b, err := br.ReadByte()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			got.WriteByte(b)
			continue
		}
		p := make([]byte, n)
		k, err := io.ReadFull(br, p)
		got.Write(p[:k])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		require.NoError(t, err)
	}
	require.Equal(t, data, got.Bytes())
	require.LessOrEqual(t, sc.reads, len(data)/readBufferSize+2, "the connection was read in small pieces")

	deadline := time.Now().Add(time.Minute)
	require.NoError(t, c.SetReadDeadline(deadline))
	require.Equal(t, deadline, sc.deadline, "a deadline is the connection's")
}
