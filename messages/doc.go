// Package messages defines what crosses between the connector's layers: the
// protobuf messages sent to queue and task actors (messages.proto, generated
// into messages.pb.go), the durable records of actions, and the domain
// errors every layer shares.
//
// Messages are sent as pointers. Replies carry an ErrorCode rather than a Go
// error so that they serialise; Err and Code convert between the two.
package messages
