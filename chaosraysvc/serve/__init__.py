"""Ray Serve as seen through the dashboard's REST API and the proxies' health routes."""
