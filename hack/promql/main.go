// Command promql checks Prometheus rules and Grafana dashboards with their
// projects' own code, for procon's tests of the chart's PrometheusRule and
// Grafana dashboard.
//
//	promql check FILE...    parse every expr and for of the PrometheusRule objects in FILE
//	promql exprs FILE       FILE is a JSON array of PromQL expressions: print, as JSON, the
//	                        metric names each one selects, or why it does not parse
//	promql dashboard FILE   decode FILE strictly as a Grafana dashboard (the types the Grafana
//	                        Foundation SDK generates from Grafana's dashboard schema, every
//	                        panel and query plugin registered) and check its constraints
//
// It exits 1 with the errors on stderr when a rule or dashboard does not
// pass. The alerts' behaviour is tested by script_test.go, built as a test
// binary (promqltest needs a *testing.T).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "check":
		err = check(os.Args[2:])
	case "exprs":
		err = exprs(os.Args[2])
	case "dashboard":
		err = checkDashboard(os.Args[2])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "promql: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: promql check FILE... | promql exprs FILE | promql dashboard FILE")
	os.Exit(2)
}

// parsed is what exprs prints for one expression.
type parsed struct {
	Metrics []string `json:"metrics"`
	Error   string   `json:"error,omitempty"`
}

// exprs parses each expression of a JSON array and names the metrics its
// vector and matrix selectors select (by name, or by a __name__ matcher).
func exprs(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	out := make(map[string]parsed, len(list))
	for _, expr := range list {
		node, err := parser.ParseExpr(expr)
		if err != nil {
			out[expr] = parsed{Metrics: []string{}, Error: err.Error()}
			continue
		}
		names := map[string]bool{}
		parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
			if selector, ok := n.(*parser.VectorSelector); ok {
				if selector.Name != "" {
					names[selector.Name] = true
				}
				for _, matcher := range selector.LabelMatchers {
					if matcher.Name == model.MetricNameLabel {
						names[matcher.Value] = true
					}
				}
			}
			return nil
		})
		metrics := make([]string, 0, len(names))
		for name := range names {
			metrics = append(metrics, name)
		}
		sort.Strings(metrics)
		out[expr] = parsed{Metrics: metrics}
	}
	encoded, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Println(string(encoded))
	return nil
}

// failed tells a real error from the empty list of errors the SDK's decoders
// return, as a non-nil error, when everything decoded.
func failed(err error) bool {
	var list cog.BuildErrors
	if errors.As(err, &list) {
		return len(list) > 0
	}
	return err != nil
}

// checkDashboard decodes a dashboard strictly: a missing required field, a
// field of the wrong type or one the schema does not know is an error.
func checkDashboard(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	plugins.RegisterDefaultPlugins()
	var board dashboard.Dashboard
	if err := board.UnmarshalJSONStrict(data); failed(err) {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := board.Validate(); failed(err) {
		return fmt.Errorf("%s: %w", file, err)
	}
	fmt.Printf("%s: a valid dashboard with %d panels\n", file, len(board.Panels))
	return nil
}

type prometheusRule struct {
	Kind string `json:"kind"`
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert  string `json:"alert"`
				Record string `json:"record"`
				Expr   string `json:"expr"`
				For    string `json:"for"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

func check(files []string) error {
	var problems []error
	rules := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var doc prometheusRule
			if err := decoder.Decode(&doc); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("%s: %w", file, err)
			}
			if doc.Kind != "PrometheusRule" {
				continue
			}
			for _, group := range doc.Spec.Groups {
				for _, rule := range group.Rules {
					rules++
					name := rule.Alert + rule.Record
					if _, err := parser.ParseExpr(rule.Expr); err != nil {
						problems = append(problems, fmt.Errorf("%s/%s: expr: %w", group.Name, name, err))
					}
					if rule.For != "" {
						if _, err := model.ParseDuration(rule.For); err != nil {
							problems = append(problems, fmt.Errorf("%s/%s: for: %w", group.Name, name, err))
						}
					}
				}
			}
		}
	}
	if rules == 0 {
		return errors.New("no PrometheusRule rules found")
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	fmt.Printf("%d rules parse\n", rules)
	return nil
}
