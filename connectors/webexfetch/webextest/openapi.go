package webextest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Spec is Cisco's OpenAPI description of the Webex Messaging API,
// unchanged (testdata/README.md: © Cisco Systems / Webex, CC BY 4.0,
// from github.com/webex/webex-openapi-specs).
//
//go:embed testdata/webex-messaging.json
var Spec []byte

// SpecAttribution is the attribution the licence of Spec asks for.
const SpecAttribution = "Webex Messaging OpenAPI description © Cisco Systems / Webex, CC BY 4.0 (github.com/webex/webex-openapi-specs, public-spec/webex-messaging.json)"

var (
	specOnce sync.Once
	specDoc  *openapi3.T
	specErr  error
)

// loadSpec parses Spec once, checks it (its examples aside: several of
// Cisco's do not match their own schemas), and makes every object schema
// that lists its properties refuse others, so that validation also catches
// a field the description does not have.
func loadSpec() (*openapi3.T, error) {
	specOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(Spec)
		if err != nil {
			specErr = fmt.Errorf("webextest: the OpenAPI description does not load: %w", err)
			return
		}
		if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
			specErr = fmt.Errorf("webextest: the OpenAPI description is not valid: %w", err)
			return
		}
		seen := map[*openapi3.Schema]bool{}
		for _, ref := range doc.Components.Schemas {
			strict(ref, seen)
		}
		for _, p := range doc.Paths.Map() {
			for _, op := range p.Operations() {
				for _, r := range op.Responses.Map() {
					if r.Value == nil {
						continue
					}
					for _, mt := range r.Value.Content {
						strict(mt.Schema, seen)
					}
				}
			}
		}
		specDoc = doc
	})
	return specDoc, specErr
}

func strict(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	if len(s.Properties) > 0 && s.AdditionalProperties.Schema == nil && s.AdditionalProperties.Has == nil {
		no := false
		s.AdditionalProperties.Has = &no
	}
	for _, p := range s.Properties {
		strict(p, seen)
	}
	strict(s.Items, seen)
	for _, l := range [][]*openapi3.SchemaRef{s.AllOf, s.AnyOf, s.OneOf} {
		for _, x := range l {
			strict(x, seen)
		}
	}
}

// Validator checks requests and responses against the description.
type Validator struct {
	router routers.Router
}

// NewValidator returns a validator for a stand-in at baseURL (its /v1).
func NewValidator(baseURL string) (*Validator, error) {
	doc, err := loadSpec()
	if err != nil {
		return nil, err
	}
	c := *doc
	c.Servers = openapi3.Servers{{URL: baseURL}}
	r, err := gorillamux.NewRouter(&c)
	if err != nil {
		return nil, err
	}
	return &Validator{router: r}, nil
}

var opts = &openapi3filter.Options{
	// The stand-in checks the bearer token itself.
	AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
	// Validate every status's body the description defines.
	IncludeResponseStatus: true,
	MultiError:            true,
}

// Request validates a request. offSpec is true for the paths the stand-in
// serves that the description does not cover (/contents); any other path
// the description lacks is an error.
func (v *Validator) Request(r *http.Request, offSpec bool) error {
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		if offSpec {
			return nil
		}
		return fmt.Errorf("not in the OpenAPI description: %w", err)
	}
	if offSpec {
		return errors.New("the stand-in serves as a file a path the OpenAPI description has")
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		body, err = io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	in := &openapi3filter.RequestValidationInput{Request: r.Clone(r.Context()), PathParams: params, Route: route, Options: opts}
	in.Request.Body = io.NopCloser(bytes.NewReader(body))
	return openapi3filter.ValidateRequest(context.Background(), in)
}

// Response validates a response to r.
func (v *Validator) Response(r *http.Request, status int, h http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		return nil // reported with the request
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	hh := h.Clone()
	// Cisco's description gives application/json; the charset parameter
	// is the service's (and kin-openapi matches media types with it).
	if ct := hh.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		hh.Set("Content-Type", "application/json")
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: hh, Options: opts}
	out.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), out)
}
