"""A real one-machine Kubernetes: control plane (etcd, kube-apiserver, kube-controller-manager).

Built from pinned Go modules (`controlplane/`), started on loopback by `ControlPlane`.
"""
