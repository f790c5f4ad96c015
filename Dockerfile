# The ridehail image: every process of docker-compose.yml (serve, pricing, simulate) runs it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (a layer that survives code changes), at the versions requirements.lock
# pins. The lock also pins the dev and bench tools; as constraints (-c) it installs only what
# the runtime needs (project.dependencies and the otlp extra) at those versions.
COPY requirements.lock pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['otlp']))" > runtime.txt \
 && pip install -c requirements.lock -r runtime.txt

COPY README.md ./
COPY ridehail ridehail
COPY dispatch dispatch
COPY trips trips
COPY ratelimit ratelimit
RUN pip install --no-deps . && rm -rf build runtime.txt

RUN useradd --create-home --uid 10001 ridehail
USER ridehail

EXPOSE 8000 8001
ENTRYPOINT ["ridehail"]
CMD ["serve", "--host", "0.0.0.0"]
