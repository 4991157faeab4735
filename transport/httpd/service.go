package httpd

import (
	"context"
	"html"
	"os"
	"runtime"
	"strconv"

	"github.com/connectorhq/connector/transport/aci"
)

// The service port (Config.Port = auth.ServicePort) answers IDOL's service
// actions: GetStatus (the ACI port's reply, Config.ACI), GetStatusInfo,
// Stop, and GET /metrics; and, at / or action=Admin, a page that links the
// dashboard.

// getStatusInfo serves GetStatusInfo: the process, its ports and uptime.
func (s *Server) getStatusInfo(context.Context, *aci.Request) (*result, error) {
	v := s.cfg.Version
	now := s.cfg.Now()
	return &result{data: []aci.Node{
		aci.TextNode("status", "running"),
		aci.TextNode("product", v.Product),
		aci.TextNode("version", v.Version),
		aci.TextNode("pid", strconv.Itoa(os.Getpid())),
		aci.TextNode("serviceport", strconv.Itoa(s.Port())),
		aci.TextNode("starttime", s.started.Format(aci.ErrorTimeLayout)),
		aci.TextNode("uptime", strconv.FormatInt(int64(now.Sub(s.started).Seconds()), 10)),
		aci.TextNode("goroutines", strconv.Itoa(runtime.NumGoroutine())),
		aci.TextNode("directory", v.Directory),
		aci.TextNode("configpath", v.ConfigPath),
	}}, nil
}

// stopService serves the service port's Stop: it answers, then asks the
// server to shut down exactly as SIGTERM does (running actions end as
// Stopped, queued ones stay queued on disk).
func (s *Server) stopService(context.Context, *aci.Request) (*result, error) {
	res := &result{data: []aci.Node{aci.TextNode("status", "stopping")}}
	if s.cfg.Stop != nil {
		res.after = s.cfg.Stop
	}
	s.log.Info("Stop received on the service port; shutting down")
	return res, nil
}

// servicePage serves the service port's page (GET / or action=Admin): links
// to the dashboard, the metrics and the status actions.
func (s *Server) servicePage(ctx context.Context, _ *aci.Request) (*result, error) {
	host := ""
	if c := callerOf(ctx); c != nil {
		host = hostName(c.host)
	}
	return &result{raw: []byte(s.servicePageHTML(host)), rawType: "text/html; charset=utf-8", headers: pageHeaders}, nil
}

func (s *Server) servicePageHTML(host string) string {
	dash := ""
	if s.cfg.DashboardURL != nil {
		if u := s.cfg.DashboardURL(host); u != "" {
			dash = `<li><a id="dashboard" href="` + html.EscapeString(u) + `">Dashboard</a> (the queue, on the ACI port)</li>`
		}
	}
	return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>` + html.EscapeString(s.cfg.Version.Product) +
		` service port</title></head><body><h1>` + html.EscapeString(s.cfg.Version.Product) + ` service port</h1><ul>` + dash +
		`<li><a href="/metrics">/metrics</a> (Prometheus)</li>` +
		`<li><a href="/action=GetStatus">GetStatus</a></li>` +
		`<li><a href="/action=GetStatusInfo">GetStatusInfo</a></li>` +
		`<li><a href="/action=ShowPermissions">ShowPermissions</a></li></ul></body></html>`
}

// pageHeaders keep a page served by this server from being framed, sniffed
// or cached, and limit what it may load to its own origin.
var pageHeaders = [][2]string{
	{"Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
	{"X-Frame-Options", "DENY"},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"Cache-Control", "no-store"},
}
