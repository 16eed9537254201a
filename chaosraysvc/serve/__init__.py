"""Ray Serve as seen through the dashboard's REST API and the proxies' health routes.

- `dashboard`: a dashboard's URL and the route requests take to it (direct HTTP here; the
  kubernetes target's route through the API server lives in `chaosraysvc.kube.proxy`).
- `rest`, `nodes`, `live`: the Serve details, the Ray nodes and the live placement, read
  through a `Dashboard`; `deployments`: Serve deployments as a config declares them.
"""
