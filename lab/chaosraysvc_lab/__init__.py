"""The chaosraysvc lab: a one-machine Kubernetes where chaosraysvc is tested and measured.

Not part of the extension users install (`chaosraysvc`): what envtest and kind are to their
projects. The control plane and the KubeRay operator are built from pinned Go modules
(`lab/controlplane/`) and started on loopback by `controlplane.ControlPlane`; `stack.KubeNode`
adds a process kubelet and KubeRay's HA sample. Command: `chaosraysvc-lab`.
"""
