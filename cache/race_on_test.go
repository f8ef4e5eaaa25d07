//go:build race

package cache

// raceOn is true when the race detector is on; single-goroutine volume tests
// scale down under it (the detector adds nothing there but a 10x slowdown).
const raceOn = true
