"""Password hashers. Production uses Django's Argon2 defaults; tests use Argon2 with cheap parameters."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class TestArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with a small memory and time cost. Only `config.settings.test` lists it."""

    time_cost = 1
    memory_cost = 1024
    parallelism = 1
