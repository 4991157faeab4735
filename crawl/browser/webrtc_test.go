package browser

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connectorhq/connector/internal/netguard"
)

// TestWebRTCCannotReachDeniedAddresses: WebRTC sends UDP (STUN) itself,
// not through the deny list's proxy, so with Config.Deny a page's
// RTCPeerConnection must not send any: a STUN server on a denied address
// gets nothing, while the same page with a deny list that does not apply
// to the browser (the control, no Deny) reaches it.
func TestWebRTCCannotReachDeniedAddresses(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	got := make(chan string, 16)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- fmt.Sprintf("%d bytes from %v", n, from)
		}
	}()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	// The page says "gathered" once ICE gathering is complete: every
	// STUN request has been sent by then.
	body := fmt.Sprintf(`<html><body><p id="out"></p><script>
var pc = new RTCPeerConnection({iceServers: [{urls: "stun:127.0.0.1:%d"}]});
pc.onicegatheringstatechange = function(){ if (pc.iceGatheringState === "complete") document.getElementById("out").textContent = "gathered" };
pc.createDataChannel("x");
pc.createOffer().then(function(o){ return pc.setLocalDescription(o) });
</script></body></html>`, port)
	opts := RenderOptions{WaitSelector: "#out:not(:empty)", Deadline: 10 * time.Second}

	deny, err := netguard.Parse([]string{"127.0.0.0/8", "::1"})
	require.NoError(t, err)
	p := newPool(t, Config{Tabs: 1, Deny: deny})
	render(t, p, "http://example.test/p", body, opts)
	select {
	case m := <-got:
		t.Fatalf("a STUN packet reached a denied address: %s", m)
	default:
	}

	// The control: without a deny list the STUN server is reached.
	open := newPool(t, Config{Tabs: 1})
	render(t, open, "http://example.test/p", body, opts)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		assert.Fail(t, "the control page sent no STUN packet: the test proves nothing")
	}
}
