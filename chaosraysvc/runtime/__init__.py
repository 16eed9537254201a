"""The one process runtime of the sandbox and of the lab's kubelet.

`sessions` starts, signals and reaps a pod's processes (recorded by pid and start time, never
found by name); `ports` finds free and open loopback ports; `probes` runs exec, httpGet and
tcpSocket probes with the kubelet's thresholds; `executables` finds the Ray and Redis programs
that pods run. Neither the sandbox (`chaosraysvc.sandbox`) nor the lab (`chaosraysvc_lab`)
imports the other: both build on this package.
"""
