package queue

import (
	"fmt"
	"slices"
	"strings"

	"github.com/connectorhq/connector/fetch"
	"github.com/connectorhq/connector/messages"
)

// admit is the one check every fetch action passes before it is queued,
// whoever submits it (the ACI front end, the scheduler, Duplicate): its
// FetchAction must be one the repository performs, the repository's
// Validate must accept its parameters (and says which task sections it
// reports on), and its secrets are sealed (fetch.Secrets) so that the
// queue and the store hold them only encrypted. It returns the spec to
// queue; spec is not changed.
func admit(repo fetch.Repository, spec *messages.ActionSpec) (*messages.ActionSpec, error) {
	if spec == nil {
		return nil, fmt.Errorf("%w: no action to submit", messages.ErrInvalidParam)
	}
	fa := strings.ToUpper(strings.TrimSpace(spec.FetchAction))
	supported := repo.FetchActions()
	if !slices.Contains(supported, fa) {
		return nil, messages.Invalid("FetchAction", fa, "must be one of "+strings.Join(supported, ", "))
	}
	tasks, err := repo.Validate(fa, spec.Params)
	if err != nil {
		return nil, err
	}
	params := spec.Params
	if sec, ok := repo.(fetch.Secrets); ok {
		if params, err = sec.Seal(params); err != nil {
			return nil, err
		}
	}
	action := spec.Action
	if action == "" {
		action = "FETCH"
	}
	return &messages.ActionSpec{Action: action, FetchAction: fa, Params: params, Priority: spec.Priority, Tasks: tasks,
		Client: spec.Client, Role: spec.Role}, nil
}
