//go:build tools

// Package tools pins what generates the Prometheus Operator's CRDs
// (ServiceMonitor, PrometheusRule) for procon's tests: controller-gen run
// over the Prometheus Operator's Go API types. The chart's ServiceMonitor and
// PrometheusRule are then checked by a real API server against the real
// schemas (procon.dev.toolchain.ensure_monitoring_crds).
package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
