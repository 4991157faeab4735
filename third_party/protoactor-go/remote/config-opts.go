package remote

import (
	"time"

	"google.golang.org/grpc"
)

type ConfigOption func(config *Config)

// WithEndpointWriterBatchSize sets the batch size for the endpoint writer
func WithEndpointWriterBatchSize(batchSize int) ConfigOption {
	return func(config *Config) {
		config.EndpointWriterBatchSize = batchSize
	}
}

// WithEndpointWriterBatchBytes (connector patch) bounds the bytes of the
// messages the endpoint writer packs into one gRPC message: it sends what it
// has packed once their serialized size reaches batchBytes, so a gRPC message
// holds at most batchBytes plus one message (and the batch's small framing),
// whatever EndpointWriterBatchSize allows. 0 (the default): no bound.
func WithEndpointWriterBatchBytes(batchBytes int) ConfigOption {
	return func(config *Config) {
		config.EndpointWriterBatchBytes = batchBytes
	}
}

// WithEndpointWriterMaxMessageBytes (connector patch) tells the endpoint
// writer the largest gRPC message it may send (the receiver's
// grpc.MaxRecvMsgSize, and the sender's MaxCallSendMsgSize). A batch is
// sent before a message that would take it past that; a message that
// cannot fit even alone is not sent: it is logged (its type and size) and
// dropped, and its sender, if any (a request), is answered with a
// DeadLetterResponse at once. Upstream sent it: the send failed, or the
// receiver broke the stream, and every message packed or queued with it
// was lost while the writer started again. 0 (the default): no check.
func WithEndpointWriterMaxMessageBytes(maxBytes int) ConfigOption {
	return func(config *Config) {
		config.EndpointWriterMaxMessageBytes = maxBytes
	}
}

// WithEndpointWriterQueueSize sets the queue size for the endpoint writer
func WithEndpointWriterQueueSize(queueSize int) ConfigOption {
	return func(config *Config) {
		config.EndpointWriterQueueSize = queueSize
	}
}

// WithEndpointManagerBatchSize sets the batch size for the endpoint manager
func WithEndpointManagerBatchSize(batchSize int) ConfigOption {
	return func(config *Config) {
		config.EndpointManagerBatchSize = batchSize
	}
}

// WithEndpointManagerQueueSize sets the queue size for the endpoint manager
func WithEndpointManagerQueueSize(queueSize int) ConfigOption {
	return func(config *Config) {
		config.EndpointManagerQueueSize = queueSize
	}
}

// WithDialOptions sets the dial options for the remote
func WithDialOptions(options ...grpc.DialOption) ConfigOption {
	return func(config *Config) {
		config.DialOptions = options
	}
}

// WithServerOptions sets the server options for the remote
func WithServerOptions(options ...grpc.ServerOption) ConfigOption {
	return func(config *Config) {
		config.ServerOptions = options
	}
}

// WithCallOptions sets the call options for the remote
func WithCallOptions(options ...grpc.CallOption) ConfigOption {
	return func(config *Config) {
		config.CallOptions = options
	}
}

// WithAdvertisedHost sets the advertised host for the remote
func WithAdvertisedHost(address string) ConfigOption {
	return func(config *Config) {
		config.AdvertisedHost = address
	}
}

// WithKinds adds the kinds to the remote
func WithKinds(kinds ...*Kind) ConfigOption {
	return func(config *Config) {
		for _, k := range kinds {
			config.Kinds[k.Kind] = k.Props
		}
	}
}

// WithMaxRetryCount sets how many times an endpoint writer tries to
// connect to a remote address before it gives up and dead-letters what
// was sent there (requests get a DeadLetterResponse). Default: 5.
// (connector patch: the field existed, the option did not.)
func WithMaxRetryCount(n int) ConfigOption {
	return func(config *Config) {
		config.MaxRetryCount = n
	}
}

// WithRetryInterval sets the wait between two connection attempts of an
// endpoint writer (there is none after the last). Default: 2s, upstream's
// fixed value. So a request to a dead node fails after about
// (MaxRetryCount-1) × RetryInterval. (connector patch)
func WithRetryInterval(d time.Duration) ConfigOption {
	return func(config *Config) {
		config.RetryInterval = d
	}
}

// WithShutdownTimeout bounds a graceful Shutdown's wait for the gRPC
// server to drain before it is stopped hard. Default: 10s, upstream's
// fixed value. (connector patch)
func WithShutdownTimeout(d time.Duration) ConfigOption {
	return func(config *Config) {
		config.ShutdownTimeout = d
	}
}
