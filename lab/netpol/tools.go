//go:build tools

// kube-router's own main (cmd/kube-router), pinned here; no code of ours. The lab runs only its
// NetworkPolicy controller (--run-firewall=true --run-router=false --run-service-proxy=false):
// lab/chaosraysvc_lab/netpol.py.
package tools

import (
	_ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
)
