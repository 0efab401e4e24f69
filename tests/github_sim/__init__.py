"""The GitHub simulator: a local REST API that tests and benchmarks run the app against."""

from tests.github_sim.simulator import BOT_LOGIN, GitHubSimulator, generate_app_keypair

__all__ = ["BOT_LOGIN", "GitHubSimulator", "generate_app_keypair"]
