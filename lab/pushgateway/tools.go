//go:build tools

// The Pushgateway's own main (github.com/prometheus/pushgateway), pinned here; no code of ours.
// The lab's node runs it beside Prometheus, which scrapes it: where the metrics control pushes
// each run's figures (lab/chaosraysvc_lab/pushgateway.py).
package tools

import (
	_ "github.com/prometheus/pushgateway"
)
