"""One Redis connection pool per process for Django's cache (sessions are ``cached_db``, so every request reads it).

Django keeps cache backends in an asgiref ``Local``, which is context-local: under ASGI each request runs in a new
context and so built a new ``RedisCache``, a new connection pool and a new TCP connection to Redis (with its
handshake and health check), then dropped them (Django ticket #35651). Measured through daphne that was about 2 ms
of CPU per request (docs/benchmarks.md, scheduling). ``SharedConnectionPool`` hands every backend instance the
process-wide pool for its URL and options instead; redis-py pools are thread-safe and reset themselves in a forked
child, so Celery's prefork workers and daphne's per-request threads may share one.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Self

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class SharedConnectionPool(redis.ConnectionPool):
    """``CACHES[...]["OPTIONS"]["pool_class"]``: ``from_url`` returns one pool per (URL, options) per process."""

    _shared_pools: ClassVar[dict[tuple[str, str], SharedConnectionPool]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Self:
        key = (url, repr(sorted(kwargs.items())))
        pool = cls._shared_pools.get(key)
        if pool is None:
            with cls._shared_lock:
                pool = cls._shared_pools.get(key)
                if pool is None:
                    pool = cls._shared_pools[key] = super().from_url(url, **kwargs)
        return pool  # type: ignore[return-value]  # one class per process: the pool is a SharedConnectionPool


class SharedClientRedisCache(RedisCache):
    """``CACHES[...]["BACKEND"]``: Django's Redis cache with one ``redis.Redis`` client per pool and process.

    Django builds a new ``redis.Redis`` for every cache operation (and, backends being context-local, a new cache
    client for every request); each build registers some 170 response callbacks. A client only routes commands to
    its pool, which is thread-safe, so one per pool serves every thread. Everything else is Django's."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _SharedRedisCacheClient


class _SharedRedisCacheClient(RedisCacheClient):
    _clients: ClassVar[dict[redis.ConnectionPool, redis.Redis]] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # Django's, not in the stubs
        client = self._clients.get(pool)
        if client is None:
            client = self._clients.setdefault(pool, redis.Redis(connection_pool=pool))
        return client
