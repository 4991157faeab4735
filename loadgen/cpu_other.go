//go:build !unix

package loadgen

import "time"

// processCPU is not measured on this system: the report's generator CPU
// figures are then 0.
func processCPU() time.Duration { return 0 }
