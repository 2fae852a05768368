# Production image of the Simulation Config Service.
# Build:   docker build -t simconfig .
# Migrate: docker run --rm -e SIMCONFIG_DATABASE_URL=... simconfig migrate
# Serve:   docker run -p 50051:50051 -e SIMCONFIG_DATABASE_URL=... simconfig
# A whole stack (PostgreSQL, two replicas, the REST gateway): deploy/compose.yaml.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SIMCONFIG_HOST=0.0.0.0 \
    SIMCONFIG_PORT=50051 \
    SIMCONFIG_DATA_DIR=/var/lib/simconfig \
    SIMCONFIG_DEMO_TENANT=false \
    SIMCONFIG_LOG_FORMAT=json

RUN groupadd --system --gid 10001 simconfig \
    && useradd --system --uid 10001 --gid simconfig --home-dir /var/lib/simconfig --create-home simconfig

WORKDIR /app
COPY constraints.txt pyproject.toml README.md ./
COPY protos ./protos
COPY generated ./generated
COPY service ./service
COPY storage ./storage
RUN pip install --no-compile -c constraints.txt .
COPY deploy/healthcheck.py ./deploy/healthcheck.py

USER 10001:10001
# Only used without SIMCONFIG_DATABASE_URL: the embedded SQLite file must outlive the container.
VOLUME ["/var/lib/simconfig"]
EXPOSE 50051
# Healthy while the server answers SERVING to the standard gRPC health check, i.e. while it can
# reach its database (what Compose's `condition: service_healthy` waits for).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py"]
# Migrations are a separate step (`simconfig migrate`), run once per release; `serve` refuses
# to start on a schema older than the code.
ENTRYPOINT ["simconfig"]
CMD ["serve", "--no-migrate"]
