"""Read and act on one RayService through the Kubernetes API.

- `client`: the API client (built by chaostoolkit-kubernetes' factory) and the only place
  where the client's errors become chaosraysvc errors.
- `rayservice`: the RayService, its active RayCluster and its GCS fault-tolerance set-up.
- `pods`: KubeRay pods as `Pod` values.
- `redis`: the Redis pod behind the GCS fault-tolerance address, and whether its data survives.
- `endpoints`: the serve Service's endpoints, from EndpointSlices or core Endpoints.
- `urls`: where Serve and the dashboard are reached (a configured URL, the Services' cluster
  DNS names in a pod, else the dashboard through the API server), decided in one place.
- `proxy`: the dashboard through the API server's service proxy of the head Service.

`chaosraysvc.targets.kubernetes.KubernetesTarget` puts them together.
"""
