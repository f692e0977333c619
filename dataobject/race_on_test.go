//go:build race

package dataobject_test

// raceDetector is whether the tests run under the race detector, which makes the large
// import about ten times slower.
const raceDetector = true
