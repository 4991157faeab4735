// Package result is the JSON every benchmark program of the bench module
// prints on standard output: one Output per run, a flat list of named
// metrics. The driver (cmd/driver) runs the programs several times and
// computes medians, min, max and ratios from these files.
package result

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// Metric is one figure of a run.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Output is what one program run prints.
type Output struct {
	Suite    string            `json:"suite"`
	Variant  string            `json:"variant,omitempty"`
	Started  time.Time         `json:"started"`
	ElapsedS float64           `json:"elapsed_s"`
	Metrics  []Metric          `json:"metrics"`
	Info     map[string]string `json:"info,omitempty"`
	Notes    []string          `json:"notes,omitempty"`
}

// New starts an Output for suite and variant, stamped now.
func New(suite, variant string) *Output {
	return &Output{Suite: suite, Variant: variant, Started: time.Now().UTC(), Info: map[string]string{}}
}

// Add records a metric.
func (o *Output) Add(name string, v float64, unit string) {
	o.Metrics = append(o.Metrics, Metric{Name: name, Value: v, Unit: unit})
}

// Note records a remark for the reader (a warning, a state seen).
func (o *Output) Note(format string, args ...any) {
	o.Notes = append(o.Notes, fmt.Sprintf(format, args...))
}

// Get returns the value of metric name and whether it is there.
func (o *Output) Get(name string) (float64, bool) {
	for _, m := range o.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// Write prints o as one JSON document to w, setting ElapsedS.
func (o *Output) Write(w io.Writer) error {
	o.ElapsedS = time.Since(o.Started).Seconds()
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(o); err != nil {
		return fmt.Errorf("result: write: %w", err)
	}
	return nil
}

// Read parses one Output.
func Read(r io.Reader) (*Output, error) {
	var o Output
	if err := json.NewDecoder(r).Decode(&o); err != nil {
		return nil, fmt.Errorf("result: read: %w", err)
	}
	return &o, nil
}

// Fatal prints "prog: err" to standard error and exits 1. For main
// functions only.
func Fatal(prog string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	os.Exit(1)
}
