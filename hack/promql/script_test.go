package main

import (
	"os"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
)

// TestScript runs the promqltest script named by PROCON_PROMQL_SCRIPT: load
// series, evaluate expressions at given times, compare with what is expected.
// procon's tests build this as a binary (go test -c) and run it per script.
func TestScript(t *testing.T) {
	path := os.Getenv("PROCON_PROMQL_SCRIPT")
	if path == "" {
		t.Fatal("PROCON_PROMQL_SCRIPT names no script")
	}
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Prometheus' defaults (5m lookback), with what promqltest's own engine
	// enables: it re-runs every instant query with the @ modifier.
	engine := promqltest.NewTestEngineWithOpts(t, promql.EngineOpts{
		MaxSamples:           1_000_000,
		Timeout:              time.Minute,
		LookbackDelta:        5 * time.Minute,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
	promqltest.RunTest(t, string(script), engine)
}
