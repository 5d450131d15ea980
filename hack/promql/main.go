// Command promql checks Prometheus rules with Prometheus' own code, for
// procon's tests of the chart's PrometheusRule.
//
//	promql check FILE...  parse every expr and for of the PrometheusRule objects in FILE
//
// It exits 1 with the errors on stderr when a rule does not parse. The
// alerts' behaviour is tested by script_test.go, built as a test binary
// (promqltest needs a *testing.T).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func main() {
	if len(os.Args) < 3 || os.Args[1] != "check" {
		fmt.Fprintln(os.Stderr, "usage: promql check FILE...")
		os.Exit(2)
	}
	if err := check(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "promql: %v\n", err)
		os.Exit(1)
	}
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
