package cpuquota

import "testing"

// BenchmarkLimit: one reading as Keep makes it every second (the mounts
// looked up once), and as Limit makes it (the mounts read each time).
func BenchmarkLimit(b *testing.B) {
	b.Run("again", func(b *testing.B) {
		r := &reader{root: "/"}
		for b.Loop() {
			if _, _, err := r.limit(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := Limit(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
