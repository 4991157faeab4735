package messages

// stateNames are the status strings printed in QueueInfo replies. Queued,
// Processing and Finished are what real IDOL servers print; the others are
// this server's choice (docs/protocol.md).
var stateNames = [...]string{
	State_STATE_UNSPECIFIED: "Unknown",
	State_STATE_QUEUED:      "Queued",
	State_STATE_PROCESSING:  "Processing",
	State_STATE_PAUSED:      "Paused",
	State_STATE_FINISHED:    "Finished",
	State_STATE_CANCELLED:   "Cancelled",
	State_STATE_STOPPED:     "Stopped",
	State_STATE_ERROR:       "Error",
}

// StatusName returns the status string printed for s.
func StatusName(s State) string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return stateNames[0]
}

// ParseState reads a status name in any ASCII case, without the ASCII
// white space around it (IsValue: "finished", "Processing"; not
// Pau\u017fed with a long s, nor Paused followed by a no-break space);
// "canceled" is accepted as well as "cancelled".
func ParseState(name string) (State, bool) {
	is := func(s string) bool { return IsValue(name, s) }
	if is("canceled") {
		return State_STATE_CANCELLED, true
	}
	for i := 1; i < len(stateNames); i++ {
		if is(stateNames[i]) {
			return State(i), true
		}
	}
	return State_STATE_UNSPECIFIED, false
}

// Terminal reports whether s is an end state.
func Terminal(s State) bool {
	switch s {
	case State_STATE_FINISHED, State_STATE_CANCELLED, State_STATE_STOPPED, State_STATE_ERROR:
		return true
	}
	return false
}
