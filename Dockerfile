# syntax=docker/dockerfile:1
# Consulta's one application image: daphne (web), Celery worker and beat, and migrations all run from it.
# The SPA is built in a throw-away Node stage; the runtime image carries no Node and no build tools.

# --- Stage 1: the Vue SPA -------------------------------------------------------------------------------------------
FROM node:20-slim AS frontend
WORKDIR /app/frontend
# Manifests first, so the dependency layer is reused until they change.
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# --- Stage 2: the Python runtime ------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app

# The pinned lock file only, so code changes do not reinstall dependencies. Every pinned package ships
# manylinux wheels (psycopg[binary], argon2-cffi, cryptography), so no compiler is needed.
COPY requirements/base.txt requirements/base.txt
RUN pip install --no-cache-dir -r requirements/base.txt

COPY . .
COPY --from=frontend /app/frontend/dist /app/frontend/dist

# Static files (admin, API docs, the built SPA) are collected and compressed at build time so every replica serves
# identical hashed files through whitenoise. Production settings refuse to load without a secret key, hosts and a
# database URL; these throw-away values exist only for this step (no database is contacted) and are not kept in
# the image's environment.
RUN DJANGO_SETTINGS_MODULE=config.settings.production \
    DJANGO_SECRET_KEY=build-only-collectstatic-needs-a-value-never-used-at-runtime-0000 \
    DJANGO_ALLOWED_HOSTS=build \
    DATABASE_URL=postgres://build@localhost/build \
    python manage.py collectstatic --noinput

# Run as an unprivileged user with a fixed uid (for volume permissions and PodSecurity-style policies). The code and
# collected static files stay owned by root, so the application cannot modify itself.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin consulta \
    && mkdir -p /var/lib/consulta/documents && chown consulta:consulta /var/lib/consulta/documents
# Uploaded documents (a named volume in compose.yaml); the only path the application writes to.
USER consulta

EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "config.asgi:application"]
