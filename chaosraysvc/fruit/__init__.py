"""KubeRay's HA sample application (fruit), run by the sandbox and by the lab's Ray pods.

`config` is its declarative Serve config, free of Ray; `app` is its code, which Ray imports in
its replica processes through `config.IMPORT_PATH`.
"""
