"""Read and act on one RayService through the Kubernetes API.

- `client`: the API client (built by chaostoolkit-kubernetes' factory) and the only place
  where the client's errors become chaosraysvc errors.
- `rayservice`: the RayService, its active RayCluster and its GCS fault-tolerance set-up.
- `pods`: KubeRay pods as `Pod` values.
- `redis`: the Redis pod behind the GCS fault-tolerance address, and whether its data survives.
- `endpoints`: the serve Service's endpoints, from EndpointSlices or core Endpoints.
- `urls`: the in-cluster Serve and dashboard URLs.

`chaosraysvc.targets.kubernetes.KubernetesTarget` puts them together.
"""
