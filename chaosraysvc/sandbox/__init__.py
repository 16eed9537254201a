"""The sandbox: KubeRay's RayService HA set-up as real local processes.

Import `Sandbox` and `SandboxSpec` from `chaosraysvc.sandbox.manager` and
`chaosraysvc.sandbox.spec`; this package keeps its import free of Ray so that the
Kubernetes target never pays for it.
"""
