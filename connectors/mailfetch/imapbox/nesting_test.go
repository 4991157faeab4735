package imapbox

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A server whose response on the Gmail data connection nests lists
// millions deep (within the 16 MiB a response may have) gets an error:
// neither a crash of the whole process (a stack overflow is fatal) nor
// a gigabyte of memory for the lists.
func TestGmailConnectionDeepNesting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		w := bufio.NewWriter(c)
		_, _ = w.WriteString("* BAD " + strings.Repeat("(", maxResponse-100) + "\r\n")
		_ = w.Flush()
		_, _ = c.Read(make([]byte, 1)) // until the client hangs up
	}()
	b := &Box{cfg: Config{Addr: ln.Addr().String(), Security: SecurityNone, Timeout: 30 * time.Second}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = b.dialGM(context.Background())
	runtime.ReadMemStats(&after)
	require.Error(t, err)
	require.Contains(t, err.Error(), "greeted with")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(256<<20), "bytes allocated for a 16 MiB response")
	<-served
}
