//go:build race

package doccheck_test

const raceEnabled = true
