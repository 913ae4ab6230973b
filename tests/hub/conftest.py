from tests.registry.test_jupyterhub import proxy_command  # noqa: F401
