package httpd

import (
	"context"

	"github.com/connectorhq/connector/dashboard"
	"github.com/connectorhq/connector/messages"
	"github.com/connectorhq/connector/transport/aci"
)

// dashboard serves action=Admin: the queue dashboard (package dashboard),
// IDOL Admin's place. File=app.js and File=app.css are its script and
// style sheet. The page's own requests are ordinary ACI requests, checked
// by the roles.
func (s *Server) dashboard(_ context.Context, req *aci.Request) (*result, error) {
	name := req.Params.Value("File")
	body, ct, ok := dashboard.File(name)
	if !ok {
		return nil, messages.Invalid("File", name, "the dashboard's files are app.js and app.css (leave File out for the page)")
	}
	return &result{raw: body, rawType: ct, headers: pageHeaders}, nil
}
