package loadgen

import "github.com/connectorhq/connector/transport/aci"

// The harness reads replies with the codec's client-side decoder
// (aci.DecodeReply): these are its names for what it reads.
type (
	reply  = aci.Decoded     // what a reply says
	status = aci.ActionState // an action status read from a GetStatus reply
)

const (
	statusNone       = aci.StateNone
	statusOther      = aci.StateOther
	statusQueued     = aci.StateQueued
	statusProcessing = aci.StateProcessing
	statusPaused     = aci.StatePaused
	statusFinished   = aci.StateFinished
	statusCancelled  = aci.StateCancelled
	statusStopped    = aci.StateStopped
	statusError      = aci.StateError
)
