//go:build tools

// Prometheus' own main (cmd/prometheus), pinned here; no code of ours. The lab's node runs it
// with Kubernetes service discovery only (build tags remove_all_sd,enable_kubernetes_sd):
// lab/chaosraysvc_lab/prometheus.py.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
